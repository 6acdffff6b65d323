//! Azure OpenAI's own settings (`kind: "azure"`): which of its two APIs a
//! provider calls, the `api-version` of the classic one, and how it
//! authenticates.
//!
//! Azure serves the same chat-completions body as OpenAI under two paths:
//!
//! - the **v1 API** (`{base_url}/openai/v1/chat/completions`), generally
//!   available since August 2025: the deployment is the body's `model`, no
//!   `api-version` (new features are opted into by headers, which
//!   `headers` can set). It is the default: it needs nothing more than
//!   an OpenAI provider, and Microsoft points new code at it;
//! - the **classic deployments API**
//!   (`{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...`):
//!   the deployment in the path, a dated `api-version` required.
//!
//! The choice is written in the config (`azure_api`) rather than guessed
//! from the URL, and an `api_version` without `azure_api: "deployments"`
//! is refused: it is the mark of a config written for the classic path
//! that would otherwise be sent to the v1 path and get 404s.

use serde_json::{Map, Value};

use super::error::{err, ConfigError};
use super::values::opt_str;

/// Longest `api_version` accepted (Azure's are like `2024-10-21` or
/// `2025-04-01-preview`).
const MAX_API_VERSION_LEN: usize = 64;

/// Which Azure OpenAI API a provider calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AzureApi {
    /// `{base_url}/openai/v1/chat/completions`, the deployment named by the
    /// body's `model`.
    V1,
    /// `{base_url}/openai/deployments/{deployment}/chat/completions?api-version={api_version}`.
    Deployments {
        /// The `api-version` query value (`[A-Za-z0-9.-]`, so it needs no
        /// escaping).
        api_version: String,
    },
}

/// How an Azure provider's credential is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AzureAuth {
    /// The `api-key` header (a resource key); no `Authorization`.
    ApiKey,
    /// `Authorization: Bearer` (a Microsoft Entra ID token: short-lived,
    /// swapped with `set_api_key`).
    Bearer,
}

/// An Azure provider's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AzureSettings {
    /// The API called.
    pub api: AzureApi,
    /// How the credential is sent.
    pub auth: AzureAuth,
}

impl AzureApi {
    /// The name used in configs.
    pub fn as_str(&self) -> &'static str {
        match self {
            AzureApi::V1 => "v1",
            AzureApi::Deployments { .. } => "deployments",
        }
    }
}

impl AzureAuth {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            AzureAuth::ApiKey => "api_key",
            AzureAuth::Bearer => "bearer",
        }
    }
}

/// The keys only an Azure provider takes.
pub(super) const AZURE_ONLY_KEYS: &[&str] = &["azure_api", "api_version", "auth"];

/// An Azure provider's settings from its config object; for any other kind,
/// an error at the first Azure-only key it sets.
pub(super) fn parse_azure(
    obj: &Map<String, Value>,
    at: &str,
    azure: bool,
) -> Result<Option<AzureSettings>, ConfigError> {
    if !azure {
        for key in AZURE_ONLY_KEYS {
            if obj.get(*key).is_some_and(|v| !v.is_null()) {
                return Err(err(
                    format!("{at}.{key}"),
                    "is only for kind \"azure\" (Azure OpenAI); remove it",
                ));
            }
        }
        return Ok(None);
    }
    let version = opt_str(obj, "api_version", at)?;
    let api = match opt_str(obj, "azure_api", at)? {
        None | Some("v1") => {
            if version.is_some() {
                return Err(err(
                    format!("{at}.api_version"),
                    "is only for azure_api \"deployments\" (the classic path); the v1 API takes \
                     none: set azure_api to \"deployments\", or remove api_version",
                ));
            }
            AzureApi::V1
        }
        Some("deployments") => AzureApi::Deployments {
            api_version: checked_version(version, at)?,
        },
        Some(_) => {
            return Err(err(
                format!("{at}.azure_api"),
                "is not an Azure API: \"v1\" (/openai/v1/chat/completions, the default) or \
                 \"deployments\" (/openai/deployments/{model}/chat/completions?api-version=...)",
            ))
        }
    };
    let auth =
        match opt_str(obj, "auth", at)? {
            None | Some("api_key") => AzureAuth::ApiKey,
            Some("bearer") => AzureAuth::Bearer,
            Some(_) => return Err(err(
                format!("{at}.auth"),
                "is not a way to authenticate: \"api_key\" (the api-key header, the default) or \
                 \"bearer\" (Authorization: Bearer, for Microsoft Entra ID tokens)",
            )),
        };
    Ok(Some(AzureSettings { api, auth }))
}

/// The classic path's `api_version`: required, and made only of the
/// characters Azure's versions use, so it goes into the query as written.
fn checked_version(version: Option<&str>, at: &str) -> Result<String, ConfigError> {
    let field = format!("{at}.api_version");
    let Some(v) = version else {
        return Err(err(
            field,
            "is required with azure_api \"deployments\", e.g. \"2024-10-21\"",
        ));
    };
    let valid = !v.is_empty()
        && v.len() <= MAX_API_VERSION_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !valid {
        return Err(err(
            field,
            format!(
                "must be 1 to {MAX_API_VERSION_LEN} letters, digits, `.` and `-`, e.g. \
                 \"2024-10-21\""
            ),
        ));
    }
    Ok(v.to_owned())
}

/// Whether an Azure `base_url` already holds the path the codec adds (a
/// copied `.../openai/v1` or `.../openai/deployments/x`): the provider
/// would send to `/openai/v1/openai/v1/...`.
pub(super) fn has_api_path(base_url: &str) -> bool {
    let path = base_url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    path.ends_with("/openai")
        || path.ends_with("/openai/v1")
        || path.contains("/openai/deployments")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value, azure: bool) -> Result<Option<AzureSettings>, ConfigError> {
        parse_azure(v.as_object().unwrap(), "providers[0]", azure)
    }

    #[test]
    fn defaults_and_both_paths() {
        assert_eq!(
            parse(json!({}), true).unwrap(),
            Some(AzureSettings {
                api: AzureApi::V1,
                auth: AzureAuth::ApiKey
            })
        );
        let s = parse(
            json!({"azure_api": "deployments", "api_version": "2025-04-01-preview", "auth": "bearer"}),
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            s.api,
            AzureApi::Deployments {
                api_version: "2025-04-01-preview".into()
            }
        );
        assert_eq!(s.auth, AzureAuth::Bearer);
        assert_eq!(parse(json!({}), false).unwrap(), None);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let field = |v: Value, azure: bool| parse(v, azure).unwrap_err().field;
        assert_eq!(
            field(json!({"azure_api": "deployments"}), true),
            "providers[0].api_version"
        );
        for bad in ["2024-10-21&x=1", "2024 10", "", "v/1", "2024-10-21\n"] {
            assert_eq!(
                field(
                    json!({"azure_api": "deployments", "api_version": bad}),
                    true
                ),
                "providers[0].api_version",
                "{bad:?}"
            );
        }
        assert_eq!(
            field(json!({"api_version": "2024-10-21"}), true),
            "providers[0].api_version",
            "an api_version on the v1 path"
        );
        assert_eq!(
            field(json!({"azure_api": "v2"}), true),
            "providers[0].azure_api"
        );
        assert_eq!(field(json!({"auth": "entra"}), true), "providers[0].auth");
        for key in AZURE_ONLY_KEYS {
            assert_eq!(
                field(json!({ *key: "v1" }), false),
                format!("providers[0].{key}")
            );
        }
        let e = parse(
            json!({"azure_api": "deployments", "api_version": "sk-secret&"}),
            true,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("sk-secret"), "{e}");
    }

    #[test]
    fn api_paths_in_base_urls() {
        assert!(has_api_path("https://r.openai.azure.com/openai/v1"));
        assert!(has_api_path("https://r.openai.azure.com/openai"));
        assert!(has_api_path(
            "https://r.openai.azure.com/openai/deployments/x"
        ));
        assert!(!has_api_path("https://r.openai.azure.com"));
        assert!(!has_api_path("https://gateway.test/azure/openaiproxy"));
        assert!(!has_api_path("http://127.0.0.1:1/v1"));
        // A gateway's own path that only mentions openai is left alone.
        assert!(!has_api_path("https://gateway.test/openai/azure-east"));
    }
}
