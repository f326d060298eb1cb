// Drives the service with the official Convex client, and prints what it saw as JSON.
// Usage: node contract.mjs <url> <token>
import { ConvexHttpClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { anyApi } from "convex/server";

const [url, token] = process.argv.slice(2);
const api = anyApi;
const out = {};

async function attempt(name, fn) {
  try {
    out[name] = { ok: await fn() };
  } catch (e) {
    out[name] = {
      error: e instanceof ConvexError ? "ConvexError" : "Error",
      message: e.message,
      data: e.data ?? null,
    };
  }
}

const anonymous = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
const backend = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
backend.setAuth(token);

await attempt("active", () => anonymous.query(api.models.getActiveModels, {}));
await attempt("default", () => anonymous.query(api.models.getDefaultModel));
await attempt("quote", () =>
  anonymous.query(api.pricing.getCreditCost, { modelId: "luma/ray-2-720p", duration: 9, quality: "high" }));
await attempt("badQuality", () =>
  anonymous.query(api.pricing.getCreditCost, { modelId: "luma/ray-2-720p", duration: 9, quality: "8k" }));
await attempt("anonymousMutation", () =>
  anonymous.mutation(api.models.setDefaultModel, { modelId: "google/veo-3" }));
await attempt("setDefault", () => backend.mutation(api.models.setDefaultModel, { modelId: "google/veo-3" }));
await attempt("stats", () =>
  backend.mutation(api.models.updateModelStats, { modelId: "google/veo-3", generationTime: 42.5, success: true }));
await attempt("bigint", () =>
  anonymous.query(api.pricing.getCreditCost, { modelId: "luma/ray-2-720p", duration: 5n, quality: "high" }));
await attempt("page", () =>
  anonymous.query(api.models.listModels, { paginationOpts: { numItems: 2, cursor: null } }));
await attempt("unknown", () => anonymous.query(api.models.noSuchFunction, {}));

console.log(JSON.stringify(out));
