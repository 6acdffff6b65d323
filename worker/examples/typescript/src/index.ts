// A TypeScript worker that embeds f3dx-router the way a gateway such as
// llmkit would: one Router per isolate, fed by the worker's own handler,
// with errors in OpenAI's shape. Build the Rust side first (README.md).
import { Router } from "../../../build/embed.js";
import type { RouterConfig, RouterError } from "../../../build/embed.js";

export interface Env {
  /** The router config as JSON: the same schema as the standalone worker's. */
  ROUTER_CONFIG?: string;
  /** The bearer token callers must send (a secret). */
  ROUTER_TOKEN?: string;
  /** The provider keys that `api_key_env` names, e.g. OPENAI_API_KEY. */
  [binding: string]: unknown;
}

/** An error this worker answers with directly. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}


// Built once per isolate, on the first request, so that provider cooldowns
// carry from one request to the next. A bad config throws and leaves it
// unset: the next request tries again and answers with the same error.
// Exported for code around this handler: a new key goes to
// `getRouter(env).setApiKey(provider, key)` (calls from then on send it).
let router: Router | undefined;

export function getRouter(env: Env): Router {
  if (router === undefined) {
    if (typeof env.ROUTER_CONFIG !== "string") {
      throw configError("ROUTER_CONFIG is not set: give it the router config as JSON");
    }
    let config: RouterConfig;
    try {
      config = JSON.parse(env.ROUTER_CONFIG) as RouterConfig;
    } catch (e) {
      throw configError(`ROUTER_CONFIG is not valid JSON: ${(e as Error).message}`);
    }
    // `env` lets each provider's `api_key_env` name a secret.
    router = new Router(config, env);
  }
  return router;
}

function configError(message: string): HttpError {
  return new HttpError(500, "server_error", "bad_config", message);
}

function authorize(request: Request, env: Env): void {
  const token = env.ROUTER_TOKEN;
  if (!token) {
    throw new HttpError(500, "server_error", "missing_token", "ROUTER_TOKEN is not set: set it (a secret) to the bearer token callers must send");
  }
  const encoder = new TextEncoder();
  const given = encoder.encode(request.headers.get("authorization") ?? "");
  const expected = encoder.encode(`Bearer ${token}`);
  // timingSafeEqual needs equal lengths; only the length can leak.
  if (given.byteLength !== expected.byteLength || !crypto.subtle.timingSafeEqual(given, expected)) {
    throw new HttpError(401, "invalid_request_error", "invalid_api_key", "missing or wrong bearer token: send Authorization: Bearer <ROUTER_TOKEN>");
  }
}

async function readJson(request: Request): Promise<unknown> {
  try {
    return await request.json();
  } catch {
    throw new HttpError(400, "invalid_request_error", "invalid_json", "the body is not valid JSON");
  }
}

async function handle(request: Request, env: Env): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (path === "/models" && request.method === "GET") {
    // The routing table: each model group with its deployments.
    authorize(request, env);
    return Response.json(getRouter(env).models());
  }
  if (path !== "/v1/chat/completions" && path !== "/quality" && path !== "/explain") {
    throw new HttpError(404, "invalid_request_error", "not_found", "no such route; use POST /v1/chat/completions, POST /quality, POST /explain or GET /models");
  }
  if (request.method !== "POST") {
    throw new HttpError(405, "invalid_request_error", "method_not_allowed", "method not allowed; use POST");
  }
  authorize(request, env);
  const router = getRouter(env);
  const body = await readJson(request);
  if (path === "/quality") {
    // A result the caller checked itself: {provider, passed, model, tenant?}.
    const { provider, passed, model, tenant } = body as { provider: string; passed: boolean; model: string; tenant?: string };
    router.recordQuality(provider, passed, { model, tenant });
    return Response.json({ recorded: true });
  }
  // The tenant of quality-aware routing, if the caller names one.
  const tenant = request.headers.get("x-f3dx-tenant") ?? undefined;
  if (path === "/explain") {
    // What a call of this body would try now, and why not the rest:
    // nothing is sent.
    return Response.json(router.explain(body, { tenant }));
  }
  // route() is chatCompletions() plus who answered and every attempt. With
  // `stream: true` it resolves at the commit point (the first output), its
  // response a stream of OpenAI server-sent events: errors before that
  // point are thrown as for a whole answer, after it they end the stream.
  //
  // The inbound headers go with it: the router copies to the providers
  // only those its config's `forward_headers` lists (never credentials,
  // such as this request's Authorization), and reads none without a list.
  const { response, provider, attempts, schemaValid } = await router.route(body, { tenant, headers: request.headers });
  const headers: Record<string, string> = { "x-f3dx-provider": provider, "x-f3dx-attempts": String(attempts.length) };
  if (schemaValid !== null) headers["x-f3dx-schema-valid"] = String(schemaValid);
  if (response instanceof ReadableStream) {
    return new Response(response, {
      headers: { ...headers, "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }
  return Response.json(response, { headers });
}

function isRouterError(e: unknown): e is RouterError {
  const fields = e as Partial<RouterError>;
  return e instanceof Error && typeof fields.kind === "string" && typeof fields.status === "number";
}

function errorResponse(e: unknown): Response {
  const headers = new Headers();
  let status = 500;
  let error: NonNullable<RouterError["error"]> = { message: "internal error", type: "server_error", code: "internal" };
  if (e instanceof HttpError) {
    status = e.status;
    error = { message: e.message, type: e.type, code: e.code };
  } else if (isRouterError(e)) {
    // The router's own answer for a routing failure (the standalone
    // worker's): a hard failure keeps the upstream's status and error.
    status = e.status;
    // Without one: a bad config, or a bad option (a tenant) of a call.
    error = e.error ??
      (e.kind === "config"
        ? { message: e.message, type: "server_error", code: "bad_config" }
        : { message: e.message, type: "invalid_request_error", code: "invalid_request" });
    if (e.provider) headers.set("x-f3dx-provider", e.provider);
    headers.set("x-f3dx-attempts", String(e.attempts));
  } else {
    console.error("unexpected error", e);
  }
  // A Response takes 200..=599 (the router's statuses always fit).
  if (status < 200 || status > 599) status = 502;
  return Response.json({ error }, { status, headers });
}

/** The provider health transitions the router saw (ejections, cooldowns,
 *  ...; each once), to `wrangler tail` and Workers Logs. */
function logHealth(): void {
  for (const event of router?.takeHealthEvents() ?? []) {
    if (event.transition === "readmitted") console.log(event);
    else console.warn(event);
  }
}

export default {
  async fetch(request, env): Promise<Response> {
    try {
      return await handle(request, env);
    } catch (e) {
      return errorResponse(e);
    } finally {
      logHealth();
    }
  },
} satisfies ExportedHandler<Env>;
