//! Azure OpenAI: OpenAI's chat-completions body (so `openai.rs` encodes it
//! and decodes the answers and streams), sent to Azure's path with Azure's
//! auth header. See `config/azure.rs` for the two APIs.

use crate::config::{AzureApi, AzureAuth, AzureSettings};
use crate::secret::Secret;

/// The path and query after `base_url` for `settings`; `deployment` is the
/// model name sent (the classic path puts it in the URL). `Err` when the
/// classic path has no deployment to name, or one that is no path segment.
pub fn path(settings: &AzureSettings, deployment: Option<&str>) -> Result<String, String> {
    match &settings.api {
        AzureApi::V1 => Ok("/openai/v1/chat/completions".to_owned()),
        AzureApi::Deployments { api_version } => {
            let name = deployment.filter(|d| !d.is_empty()).ok_or(
                "no deployment to name in the path: give the deployment's (or the provider's) \
                 `model`, or a `model` in the request",
            )?;
            // `.` and `..` would be read as the path's own segments.
            if name == "." || name == ".." {
                return Err("the deployment name is `.` or `..`, which a path cannot hold".into());
            }
            let mut out = String::with_capacity(64 + name.len());
            out.push_str("/openai/deployments/");
            push_segment(&mut out, name);
            out.push_str("/chat/completions?api-version=");
            // Checked to be [A-Za-z0-9.-] when the config was read.
            out.push_str(api_version);
            Ok(out)
        }
    }
}

/// The auth header for `key`: Azure's `api-key`, or a bearer token.
pub fn auth_header(auth: AzureAuth, key: &Secret) -> (String, String) {
    match auth {
        AzureAuth::ApiKey => ("api-key".to_owned(), key.expose().to_owned()),
        AzureAuth::Bearer => (
            "authorization".to_owned(),
            format!("Bearer {}", key.expose()),
        ),
    }
}

/// Append `segment` percent-encoded: every byte but RFC 3986's unreserved
/// characters, so a `/`, `?`, `#` or `%` in a name stays inside its segment.
fn push_segment(out: &mut String, segment: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classic(version: &str) -> AzureSettings {
        AzureSettings {
            api: AzureApi::Deployments {
                api_version: version.into(),
            },
            auth: AzureAuth::ApiKey,
        }
    }

    #[test]
    fn paths() {
        let v1 = AzureSettings {
            api: AzureApi::V1,
            auth: AzureAuth::ApiKey,
        };
        assert_eq!(path(&v1, None).unwrap(), "/openai/v1/chat/completions");
        assert_eq!(
            path(&classic("2024-10-21"), Some("gpt-4o-mini")).unwrap(),
            "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            path(&classic("1"), Some("a/b?c#d %é")).unwrap(),
            "/openai/deployments/a%2Fb%3Fc%23d%20%25%C3%A9/chat/completions?api-version=1"
        );
        for bad in [None, Some(""), Some("."), Some("..")] {
            assert!(path(&classic("1"), bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            path(&classic("1"), Some("...")).unwrap(),
            "/openai/deployments/.../chat/completions?api-version=1"
        );
    }

    #[test]
    fn auth_headers() {
        let key = Secret::new("k-1");
        assert_eq!(
            auth_header(AzureAuth::ApiKey, &key),
            ("api-key".to_owned(), "k-1".to_owned())
        );
        assert_eq!(
            auth_header(AzureAuth::Bearer, &key),
            ("authorization".to_owned(), "Bearer k-1".to_owned())
        );
    }
}
