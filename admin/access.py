"""Who may see which console page: signed-in users only; changes by role."""

from __future__ import annotations

from flask import jsonify, redirect, request, url_for

from admin.auth import current_identity
from engine.runtime import ROLE_SCOPES, SIGNED_IN

# Roles from the least to the most trusted, as a refusal names the least one that may.
LEAST_FIRST = sorted(ROLE_SCOPES, key=lambda role: len(ROLE_SCOPES[role]))


def role_for(scope: str | None) -> str:
    """The least role whose scopes allow `scope`."""
    if scope in (None, SIGNED_IN):
        return LEAST_FIRST[0]
    return next(role for role in LEAST_FIRST
                if "admin" in ROLE_SCOPES[role] or scope in ROLE_SCOPES[role])


def wants_json() -> bool:
    return (request.headers.get("X-Requested-With") == "XMLHttpRequest"
            or request.accept_mimetypes.best == "application/json")


class SignedIn:
    """Mixin for console views: anonymous callers go to the sign-in page (JSON callers get 401)."""

    required_scope: str | None = None  # to see the view at all
    write_scope: str = "catalog:write"  # to send it a POST

    def is_accessible(self) -> bool:
        identity = current_identity()
        if identity.kind == "anonymous":
            return False
        return self.required_scope is None or identity.allows(self.required_scope)

    def inaccessible_callback(self, name, **kwargs):
        if current_identity().kind == "anonymous":
            if wants_json():
                return jsonify({"code": "Unauthenticated", "message": "Sign in first"}), 401
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        return self.forbidden(self.required_scope)

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if request.method == "POST" and not self.can_write:
            return self.forbidden(self.write_scope)
        return None

    def forbidden(self, scope: str | None, what: str | None = None):
        """403, as a page of the console that says which role may do this."""
        if wants_json():
            return jsonify({"code": "Forbidden",
                            "message": f"Needs the {role_for(scope)} role"}), 403
        return self.render("catalog/forbidden.html", needed=role_for(scope),
                           what=what or self.name), 403

    @property
    def can_write(self) -> bool:
        return current_identity().allows(self.write_scope)

    @property
    def is_admin(self) -> bool:
        return current_identity().allows("admin")
