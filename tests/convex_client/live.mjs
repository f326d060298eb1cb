// Live queries with the official ConvexClient over the sync WebSocket.
// Usage: node live.mjs <url> <token>; prints one JSON line per step. Between "restart" and
// "restarted" the test restarts the server; the client must reconnect and resume on its own.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi as api } from "convex/server";
import WebSocket from "ws";
import readline from "node:readline";

const [url, token] = process.argv.slice(2);
const RAY = "luma/ray-2-720p";
const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => lines.once("line", resolve));
const say = (step, data) => console.log(JSON.stringify({ step, ...data }));

async function until(predicate, ms = 15000) {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > ms) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - start;
}

const client = new ConvexClient(url, {
  skipConvexDeploymentUrlCheck: true,
  webSocketConstructor: WebSocket,
  unsavedChangesWarning: false,
  logger: false,
});
const http = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
http.setAuth(token);

const quotes = [];
const others = [];
const active = [];
const stopQuote = client.onUpdate(api.pricing.getCreditCost,
  { modelId: RAY, duration: 9, quality: "high" }, (v) => quotes.push(v));
client.onUpdate(api.pricing.getCreditCost,
  { modelId: "google/veo-3", quality: "high" }, (v) => others.push(v));
client.onUpdate(api.models.getActiveModels, {}, (v) => active.push(v));
await until(() => quotes.length && others.length && active.length);
say("subscribed", { credits: quotes.at(-1).credits, active: active.at(-1).length });

// a change through the HTTP API, from another client
await http.mutation(api.models.updateModel, { modelId: RAY, patch: { costPerSecond: 0.2 } });
const waited = await until(() => quotes.at(-1).credits === 180);
say("pushed", { credits: quotes.at(-1).credits, waitedMs: waited, otherUpdates: others.length });

// a change that does not alter the quote: nothing is sent for it
await http.mutation(api.models.updateModel, { modelId: RAY, patch: { description: "new words" } });
await until(() => active.at(-1).find((m) => m.modelId === RAY).description === "new words");
say("unchanged", { quoteUpdates: quotes.length, otherUpdates: others.length });

// a mutation over the socket resolves only once its own write is visible
client.setAuth(async () => token);
await client.mutation(api.models.updateModel, { modelId: RAY, patch: { costPerSecond: 0.25 } });
say("ownWrite", { credits: quotes.at(-1).credits });

// a refused mutation rejects with the function's error
try {
  await client.mutation(api.models.deleteModel, { modelId: "luma/ray-flash-2-540p" });
  say("refused", { error: null });
} catch (e) {
  say("refused", { error: e.data ?? e.message });
}

// unsubscribe: no more updates for that query
stopQuote();
const before = quotes.length;
await http.mutation(api.models.updateModel, { modelId: RAY, patch: { costPerSecond: 0.3 } });
await until(() => active.at(-1).find((m) => m.modelId === RAY).costPerSecond === 0.3);
say("unsubscribed", { newUpdates: quotes.length - before });

// the server restarts: the client reconnects and resumes its subscriptions
say("restart", {});
await nextLine();
await http.mutation(api.models.updateModel, { modelId: RAY, patch: { costPerSecond: 0.4 } });
await until(() => active.at(-1).find((m) => m.modelId === RAY).costPerSecond === 0.4, 30000);
say("resumed", { costPerSecond: active.at(-1).find((m) => m.modelId === RAY).costPerSecond });

await client.close();
lines.close();
