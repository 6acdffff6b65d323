/* tslint:disable */
/* eslint-disable */
/**
 * The `ReadableStreamType` enum.
 *
 * *This API requires the following crate features to be activated: `ReadableStreamType`*
 */

export type ReadableStreamType = "bytes";

/** A provider, as in the Python API's config. */
export interface ProviderConfig {
    name: string;
    kind: "openai" | "anthropic";
    base_url: string;
    api_key?: string;
    /** Name of a binding (in the env passed to the constructor) holding the key. */
    api_key_env?: string;
    timeout_ms?: number;
    weight?: number;
    model?: string;
    headers?: Record<string, string>;
    /** A larger answer is a soft failure; on the Worker the default is 8 MiB (an isolate has 128 MB). */
    max_body_bytes?: number;
    stream_idle_timeout_ms?: number;
}

/** The router's config: the same schema as ROUTER_CONFIG. */
export interface RouterConfig {
    providers: ProviderConfig[];
    policy?: "sequential" | "weighted" | "hedged";
    hedge_k?: number;
    /** Milliseconds before each further leg (0: all together), or "auto": the p90 of the provider waited on. */
    hedge_delay_ms?: number | "auto";
    /** "auto"'s delay while that provider has fewer than 20 recent successes (default 1000). */
    hedge_delay_fallback_ms?: number;
    /** Tokens each call adds to the hedge bucket (cap 10; an extra leg costs 1). Default 0.1 with a delay, unlimited without. */
    hedge_budget?: number;
    /** Health tracking: the defaults (true or absent), off (false), or some settings. */
    health?: boolean | {
        window_s?: number; buckets?: number; min_requests?: number; max_error_rate?: number;
        consecutive_failures?: number; ejection_s?: number; max_ejection_s?: number;
    };
    /** Quality-aware routing (schema pass rates per provider, tenant and model): the defaults (true or absent), off (false), or some settings. */
    quality?: boolean | {
        window?: number; min_samples?: number; min_pass_rate?: number; probe_after_s?: number;
        on_failure?: "return" | "failover"; max_keys?: number; max_bytes?: number;
    };
}

/** Per-call options. */
export interface CallOptions {
    /** Who the call is for: quality pass rates are kept per (provider, tenant, model). */
    tenant?: string;
}

/** A result the caller checked itself, for `recordQuality`. */
export interface QualityReport {
    /** The model the call asked for. */
    model: string;
    tenant?: string;
}

/** An OpenAI chat completion (the fields the router guarantees). */
export interface ChatCompletion {
    id?: string;
    object?: string;
    model?: string;
    choices: Array<{ index: number; message: { role: string; content: string | null; tool_calls?: unknown[] }; finish_reason: string | null }>;
    usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    [key: string]: unknown;
}

/** One upstream attempt of a call. */
export interface Attempt {
    provider: string;
    outcome: "success" | "soft" | "hard" | "cancelled" | "in_flight";
    status?: number;
    fault?: string;
    detail: string;
    startedMs: number;
}

/** What `route` resolves to: the response, the winner and every attempt.
 *  For a request with `stream: true`, `response` is the stream of OpenAI
 *  server-sent events, and `provider` and `attempts` are as of its commit
 *  point. */
export interface RouteResult {
    response: ChatCompletion | ReadableStream<Uint8Array>;
    provider: string;
    attempts: Attempt[];
    /** Whether the answer matched the request's response_format; null when nothing was checked (and for a stream, checked only at its end). */
    schemaValid: boolean | null;
}

/** A provider health transition (what the standalone worker logs with
 *  console.warn, console.log for a readmission), or, with `dropped`, how
 *  many the router had to drop since the last take. */
export interface HealthEvent {
    /** One line: "provider 'openai' ejected for 30.0 s: 5 soft failures in a row". */
    message: string;
    source: "f3dx_router";
    provider?: string;
    transition?: "ejected" | "readmitted" | "cooling" | "rate_limited" | "budget_exhausted" | "quality_excluded" | "quality_readmitted";
    /** consecutive_failures, error_rate, failed_probe, retry_after, rate_limit_headers, rpm, tpm, pass_rate; null for a readmission. */
    reason?: string | null;
    /** How long the state lasts, in seconds; null for a readmission. */
    for_s?: number | null;
    /** The tenant and model of a quality transition (quality-aware routing). */
    tenant?: string;
    model?: string;
    dropped?: number;
}

/** What `chatCompletions`, `route` and the constructor throw. */
export interface RouterError extends Error {
    kind: "config" | "invalid_request" | "hard" | "all_failed";
    /** The HTTP status to answer with: the upstream's for "hard", 502 for "all_failed". */
    status: number;
    provider?: string;
    /** Upstream attempts made. */
    attempts: number;
    /** For a routing failure ("invalid_request", "hard", "all_failed"): the
     *  front door's OpenAI-shaped error, as the standalone worker answers it
     *  (with `status`): a hard failure's is the provider's own `type`, `code`
     *  and `param`, with the router's message. */
    error?: { message: string; type: string; code: string | number | null; param?: string };
}



export class ContainerStartupOptions {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    get enableInternet(): boolean | undefined;
    set enableInternet(value: boolean | null | undefined);
    entrypoint: string[];
    env: Map<any, any>;
}

declare class IntoUnderlyingByteSource {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    cancel(): void;
    pull(controller: ReadableByteStreamController): Promise<any>;
    start(controller: ReadableByteStreamController): void;
    readonly autoAllocateChunkSize: number;
    readonly type: ReadableStreamType;
}
export type { IntoUnderlyingByteSource };

declare class IntoUnderlyingSink {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    abort(reason: any): Promise<any>;
    close(): Promise<any>;
    write(chunk: any): Promise<any>;
}
export type { IntoUnderlyingSink };

declare class IntoUnderlyingSource {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    cancel(): void;
    pull(controller: ReadableStreamDefaultController): Promise<any>;
}
export type { IntoUnderlyingSource };

/**
 * Configuration options for Cloudflare's minification features:
 * <https://www.cloudflare.com/website-optimization/>
 */
export class MinifyConfig {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    css: boolean;
    html: boolean;
    js: boolean;
}

export class R2Range {
    private constructor();
    free(): void;
    [Symbol.dispose](): void;
    get length(): number | undefined;
    set length(value: number | null | undefined);
    get offset(): number | undefined;
    set offset(value: number | null | undefined);
    get suffix(): number | undefined;
    set suffix(value: number | null | undefined);
}

/**
 * A router for a TypeScript worker. Build it once (outside the request
 * handler) so provider cooldowns carry from one request to the next.
 */
export class Router {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Route one OpenAI chat-completions request; resolves to the
     * OpenAI-shaped response, or rejects with a `RouterError`. With
     * `stream: true` it resolves at the commit point (the first output) to
     * a `ReadableStream` of OpenAI server-sent events ending with
     * `data: [DONE]`; a failure after it ends the stream with one error
     * event instead. Cancelling the stream aborts the upstream fetch.
     */
    chatCompletions(body: any, options?: CallOptions | null): Promise<ChatCompletion | ReadableStream<Uint8Array>>;
    /**
     * Validate `config`; `env` resolves each provider's `api_key_env`.
     */
    constructor(config: RouterConfig, env?: Record<string, unknown> | null);
    /**
     * Report whether an answer `provider` gave passed the caller's own
     * validation; it counts toward (provider, tenant, model)'s pass rate
     * as the router's own checks do.
     */
    recordQuality(provider: string, passed: boolean, report: QualityReport): void;
    /**
     * As `chatCompletions`, and also which provider answered and every
     * attempt (for a gateway's headers and logs).
     */
    route(body: any, options?: CallOptions | null): Promise<RouteResult>;
    /**
     * What this router remembers (per provider state, window counts,
     * latency percentiles, ejections; hedging), as `GET /stats` answers.
     * Each isolate keeps its own.
     */
    stats(): any;
    /**
     * The provider health transitions since the last take, oldest first
     * (ejections, readmissions, cooldowns, budgets run out; each once), for
     * the gateway to log: the router keeps up to 256 between two takes.
     */
    takeHealthEvents(): HealthEvent[];
}

export function __wbg_reset_state(): void;

export function __worker_init_state(): any;

export function fetch(req: Request, env: any, ctx: any): Promise<any>;
