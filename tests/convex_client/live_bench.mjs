// Used by `make bench` (bench/__main__.py); it lives here to resolve the convex package.
// Live-query benchmark: N subscribers to one query, one price change at a time; prints JSON
// with each change's arrival latencies (ms) at every subscriber.
// Usage: node live.mjs <url> <token> <subscribers> <changes>
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi as api } from "convex/server";
import WebSocket from "ws";

const [url, token, count, changes] = process.argv.slice(2);
const args = { modelId: "luma/ray-2-720p", duration: 9, quality: "high" };
const clients = [];
const latest = [];
for (let i = 0; i < Number(count); i++) {
  const client = new ConvexClient(url, {
    skipConvexDeploymentUrlCheck: true, webSocketConstructor: WebSocket,
    unsavedChangesWarning: false, logger: false,
  });
  latest.push(null);
  client.onUpdate(api.pricing.getCreditCost, args, (v) => {
    latest[i] = { credits: v.credits, at: performance.now() };
  });
  clients.push(client);
}
const until = async (predicate, ms = 120000) => {
  const start = performance.now();
  while (!predicate()) {
    if (performance.now() - start > ms) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 1));
  }
};
await until(() => latest.every((v) => v !== null));
console.error(JSON.stringify({ connected: clients.length }));
await new Promise((r) => setTimeout(r, 3000)); // let the server settle before measuring memory
console.log(JSON.stringify({ ready: true }));
await new Promise((resolve) => process.stdin.once("data", resolve));

const http = new ConvexHttpClient(url, { skipConvexDeploymentUrlCheck: true, logger: false });
http.setAuth(token);
const rounds = [];
for (let round = 1; round <= Number(changes); round++) {
  const price = (18 + round) / 100;
  const expected = (18 + round) * 9; // credits: price x 9 s x 100 credits per USD
  const sent = performance.now();
  await http.mutation(api.models.updateModel, { modelId: args.modelId, patch: { costPerSecond: price } });
  await until(() => latest.every((v) => v.credits === expected));
  rounds.push(latest.map((v) => v.at - sent));
  await new Promise((r) => setTimeout(r, 300));
}
console.log(JSON.stringify({ rounds }));
await Promise.all(clients.map((c) => c.close()));
process.exit(0);
