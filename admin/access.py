"""Who may see which console page: signed-in users only; changes by role."""

from __future__ import annotations

from flask import abort, jsonify, redirect, request, url_for

from admin.auth import current_identity


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
        abort(403)

    def _handle_view(self, name, **kwargs):
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        if request.method == "POST" and not self.can_write:
            abort(403)
        return None

    @property
    def can_write(self) -> bool:
        return current_identity().allows(self.write_scope)

    @property
    def is_admin(self) -> bool:
        return current_identity().allows("admin")
