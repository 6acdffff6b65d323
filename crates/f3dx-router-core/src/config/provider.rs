//! One upstream provider: its kind, URL, key, headers, timeouts and limits.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::azure::{has_api_path, parse_azure, AzureSettings};
use super::error::{err, ConfigError};
use super::host::HostLimits;
use super::keys::{key_path, reject_unknown, PROVIDER_KEYS};
use super::values::{opt_millis, opt_str, opt_uint, per_minute};
use crate::secret::Secret;

/// Default per-attempt timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Default longest gap between events of a committed stream.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Largest `max_body_bytes` a config may set: a response body is held in
/// memory whole, so the cap must be one the process can afford.
pub const MAX_MAX_BODY_BYTES: usize = 1 << 30;
/// Longest provider name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// Longest `base_url` accepted: a longer one is a mistake, and every
/// request would carry it.
pub const MAX_BASE_URL_LEN: usize = 2048;
/// Request headers a config may not set: they frame the message or belong
/// to one hop (RFC 9110 7.6.1), so the host sets them. A wrong
/// `content-length` would truncate or hang every request.
pub const RESERVED_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
];

/// The wire protocol a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenAI-compatible chat-completions endpoint.
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Azure OpenAI: OpenAI's body and answers, Azure's paths and auth
    /// ([`ProviderConfig::azure`]).
    Azure,
}

impl ProviderKind {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Azure => "azure",
        }
    }

    /// Whether its bodies, answers and streams are OpenAI's chat
    /// completions (only the URL and the auth header differ).
    pub fn speaks_openai(self) -> bool {
        matches!(self, ProviderKind::OpenAi | ProviderKind::Azure)
    }
}

/// The kinds, as a config writes them (for error messages).
const KINDS: &str = "\"openai\", \"anthropic\" or \"azure\"";

/// One upstream provider.
#[derive(Clone)]
pub struct ProviderConfig {
    /// Unique name, used in errors and traces.
    pub name: String,
    /// Protocol.
    pub kind: ProviderKind,
    /// Base URL, without a trailing slash (e.g. `https://api.openai.com/v1`).
    pub base_url: String,
    /// The credential; never printed.
    pub api_key: Secret,
    /// Deadline of one attempt, from dispatch to the end of its body (for a
    /// streamed attempt: to its commit point).
    pub timeout: Duration,
    /// Longest gap between events of a stream after its commit point.
    pub stream_idle_timeout: Duration,
    /// Relative share of first tries under the `weighted` policy; 0 means
    /// "only as a fallback". Ignored by the other policies.
    pub weight: u32,
    /// Model to send instead of the caller's.
    pub model: Option<String>,
    /// Extra request headers (lower-cased names).
    pub headers: Vec<(String, String)>,
    /// Largest response body accepted.
    pub max_body_bytes: usize,
    /// Requests per minute this router may send it (a token bucket).
    pub rpm: Option<u64>,
    /// Tokens per minute (estimated before, corrected by `usage` after).
    pub tpm: Option<u64>,
    /// Azure's API and auth; `Some` exactly for [`ProviderKind::Azure`].
    pub azure: Option<AzureSettings>,
}

// Header values may be credentials (Azure's `api-key`), so Debug lists names.
impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("weight", &self.weight)
            .field("model", &self.model)
            .field("header_names", &header_names)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rpm", &self.rpm)
            .field("tpm", &self.tpm)
            .field("azure", &self.azure)
            .finish()
    }
}

impl ProviderConfig {
    /// Values that must never reach an error or a log: the key and every
    /// extra header value long enough to be a credential.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        let headers = self
            .headers
            .iter()
            .map(|(_, v)| v.as_str())
            .filter(|v| v.len() >= 8);
        std::iter::once(self.api_key.expose()).chain(headers)
    }
}

pub(super) fn parse_provider(
    value: &Value,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
    limits: HostLimits,
) -> Result<ProviderConfig, ConfigError> {
    let obj = value
        .as_object()
        .ok_or_else(|| err(at, "must be an object"))?;
    reject_unknown(obj, at, PROVIDER_KEYS)?;
    let name = opt_str(obj, "name", at)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            err(
                format!("{at}.name"),
                "is required: a unique, non-empty name",
            )
        })?
        .to_owned();
    // Names travel in headers (the Worker's x-f3dx-provider and
    // x-f3dx-trace, where `,` `=` `@` separate fields): a name a header
    // cannot carry would break every answer that names it.
    if name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && !b",=@".contains(&b))
    {
        return Err(err(
            format!("{at}.name"),
            format!(
                "must be at most {MAX_NAME_LEN} printable ASCII characters, without `,` `=` `@` \
                 or line breaks"
            ),
        ));
    }
    let kind = match opt_str(obj, "kind", at)? {
        Some("openai") => ProviderKind::OpenAi,
        Some("anthropic") => ProviderKind::Anthropic,
        Some("azure") => ProviderKind::Azure,
        Some(_) => return Err(err(format!("{at}.kind"), format!("is not a kind: {KINDS}"))),
        None => return Err(err(format!("{at}.kind"), format!("is required: {KINDS}"))),
    };
    let azure = parse_azure(obj, at, kind == ProviderKind::Azure)?;
    let base_url = parse_base_url(opt_str(obj, "base_url", at)?, at)?;
    if azure.is_some() && has_api_path(&base_url) {
        return Err(err(
            format!("{at}.base_url"),
            "is the resource's endpoint only (e.g. \"https://my-resource.openai.azure.com\"): \
             the router adds /openai/v1/... or /openai/deployments/..., as azure_api says",
        ));
    }
    let api_key = parse_key(obj, at, env)?;
    let timeout = opt_millis(obj, "timeout_ms", at)?.unwrap_or(DEFAULT_TIMEOUT);
    let stream_idle_timeout =
        opt_millis(obj, "stream_idle_timeout_ms", at)?.unwrap_or(DEFAULT_STREAM_IDLE_TIMEOUT);
    let weight = match opt_uint(obj, "weight", &format!("{at}.weight"))? {
        None => 1,
        Some(w @ 0..=1_000_000) => w as u32,
        Some(_) => return Err(err(format!("{at}.weight"), "must be between 0 and 1000000")),
    };
    let model = opt_str(obj, "model", at)?.map(str::to_owned);
    let headers = parse_headers(obj.get("headers"), at)?;
    let max_body_bytes = match opt_uint(obj, "max_body_bytes", &format!("{at}.max_body_bytes"))? {
        None => limits.default_max_body_bytes,
        Some(n @ 1..) if n <= MAX_MAX_BODY_BYTES as u64 => n as usize,
        Some(_) => {
            return Err(err(
                format!("{at}.max_body_bytes"),
                format!("must be between 1 and {MAX_MAX_BODY_BYTES} (1 GiB)"),
            ))
        }
    };
    let (rpm, tpm) = (per_minute(obj, at, "rpm")?, per_minute(obj, at, "tpm")?);
    Ok(ProviderConfig {
        name,
        kind,
        base_url,
        api_key,
        timeout,
        stream_idle_timeout,
        weight,
        model,
        headers,
        max_body_bytes,
        rpm,
        tpm,
        azure,
    })
}

fn parse_base_url(url: Option<&str>, at: &str) -> Result<String, ConfigError> {
    let field = format!("{at}.base_url");
    let text = url.ok_or_else(|| err(&field, "is required, e.g. \"https://api.openai.com/v1\""))?;
    // Never quoted: a URL may carry a key (in its query, its user info, or
    // the whole value may be a key pasted in the wrong field).
    let bad = |why: &str| err(&field, why);
    if text.contains('@') {
        return Err(bad(
            "must not contain credentials (user:password@); put the key in api_key",
        ));
    }
    // The URL parser would silently drop tabs and line breaks, read a
    // backslash as a slash and `http:///v1` as host `v1`: what it would
    // send is not what was written, so refuse rather than guess.
    if text.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(bad(
            "contains a space, tab, line break or control character",
        ));
    }
    if text.contains('\\') {
        return Err(bad("contains a backslash"));
    }
    if text.len() > MAX_BASE_URL_LEN {
        return Err(bad(&format!(
            "is {} bytes long; at most {MAX_BASE_URL_LEN} are accepted",
            text.len()
        )));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(bad(
            "must start with http:// or https://, e.g. \"https://api.openai.com/v1\"",
        ));
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if rest.is_empty() || rest.starts_with(['/', '?', '#', ':']) {
        return Err(bad("has no host"));
    }
    if text.contains(['?', '#']) {
        return Err(bad(
            "must not have a query or fragment (they may hold a key)",
        ));
    }
    // url's ParseError messages are fixed words ("invalid port number").
    let parsed = url::Url::parse(text).map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Whether `v` can be sent as an HTTP header value (visible ASCII, spaces
/// and tabs; no line breaks).
fn valid_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

fn parse_key(
    obj: &Map<String, Value>,
    at: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    let key = opt_str(obj, "api_key", at)?;
    let var = opt_str(obj, "api_key_env", at)?;
    match (key, var) {
        (Some(_), Some(_)) => Err(err(at, "give api_key or api_key_env, not both")),
        (Some(k), None) if !k.is_empty() => checked_key(k, &format!("{at}.api_key")),
        (Some(_), None) => Err(err(format!("{at}.api_key"), "is empty")),
        // A value that cannot be a variable's name may be the key itself,
        // put in the wrong field: never repeated.
        (None, Some(var)) if !is_env_name(var) => Err(err(
            format!("{at}.api_key_env"),
            "is not an environment variable name (letters, digits and _, not starting with a \
             digit); to give the key itself, use api_key",
        )),
        (None, Some(var)) => match env(var) {
            Some(k) if !k.is_empty() => checked_key(&k, &format!("{at}.api_key_env")),
            // The name is not repeated either: a key of letters, digits
            // and `_` (Groq's `gsk_...`) looks like one.
            _ => Err(err(
                format!("{at}.api_key_env"),
                "names an environment variable that is not set or is empty; set it or give \
                 api_key",
            )),
        },
        (None, None) => Err(err(
            at,
            "needs api_key or api_key_env (the name of an environment variable holding the key)",
        )),
    }
}

/// Whether `name` can name an environment variable (POSIX portable names).
pub(super) fn is_env_name(name: &str) -> bool {
    name.len() <= 256
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A key goes into a header, so it must be a valid header value; the
/// message never repeats it.
pub(crate) fn checked_key(key: &str, field: &str) -> Result<Secret, ConfigError> {
    if valid_header_value(key) {
        Ok(Secret::new(key))
    } else {
        Err(err(
            field,
            "contains a line break or a non-ASCII character (is there a trailing newline?)",
        ))
    }
}

pub(super) fn parse_headers(
    value: Option<&Value>,
    at: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    let field = format!("{at}.headers");
    let obj = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(_) => {
            return Err(err(
                field,
                "must be an object of header name to string value",
            ))
        }
    };
    obj.iter()
        .enumerate()
        .map(|(index, (name, v))| {
            // A header is named by its position: its name may be a value
            // pasted in the wrong place, like its value.
            let here = key_path(&field, name, index);
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let v = v
                .as_str()
                .ok_or_else(|| err(&here, "must be a string (the header's value)"))?;
            if !valid_name {
                return Err(err(
                    &here,
                    "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)",
                ));
            }
            if !valid_header_value(v) {
                return Err(err(
                    &here,
                    "is not a valid header value (visible ASCII, spaces and tabs; no line breaks)",
                ));
            }
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                return Err(err(
                    &here,
                    "frames the message or belongs to one hop (content-length, transfer-encoding, \
                     host, connection, upgrade, te, trailer, keep-alive, proxy-*): the router sets \
                     it; remove it",
                ));
            }
            Ok((lower, v.to_owned()))
        })
        .collect()
}
