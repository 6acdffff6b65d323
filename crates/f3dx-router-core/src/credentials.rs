//! Each provider's credentials as calls see them: the config's, until
//! [`crate::Router::set_api_key`] swaps a key.
//!
//! A call takes its [`Credentials`] once, at its start: every request it
//! may send is encoded then (`call/start.rs`), and its upstream text is
//! redacted with the same keys, so a call in flight when a key changes
//! sends and hides the key it started with, and the next call the new one.
//! Until a key is set, a call reads the config's (one atomic load: no
//! lock, nothing counted); after, a read lock and a reference count.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::config::{checked_key, ConfigError, ProviderConfig, RouterConfig};
use crate::secret::{Redactor, Secret};

/// Each provider's settings with its current key, and the search for its
/// credentials in upstream text.
#[derive(Debug)]
pub(crate) struct Credentials {
    /// The config's providers, each with the key set last.
    providers: Vec<ProviderConfig>,
    /// Per provider: its key, its long header values and its deployments'.
    /// Shared between generations: a swap rebuilds only its provider's.
    redactors: Vec<Arc<Redactor>>,
}

impl Credentials {
    /// The credentials `config` gives.
    fn new(config: &RouterConfig) -> Credentials {
        let redactors = (0..config.providers.len())
            .map(|i| Arc::new(redactor(config, &config.providers[i], i, None)))
            .collect();
        Credentials {
            providers: config.providers.clone(),
            redactors,
        }
    }

    /// Provider `index`'s settings, with its current key.
    pub(crate) fn provider(&self, index: usize) -> &ProviderConfig {
        &self.providers[index]
    }

    /// `text` without provider `provider`'s credentials.
    pub(crate) fn redact(&self, provider: usize, text: &str) -> String {
        self.redactors[provider].redact(text)
    }
}

/// The search for provider `index`'s credentials: its key (and the one
/// before it, `previous`), its header values and its deployments' (values
/// too short to be credentials are left alone).
fn redactor(
    config: &RouterConfig,
    provider: &ProviderConfig,
    index: usize,
    previous: Option<&str>,
) -> Redactor {
    let deployment_headers = config
        .table
        .deployments
        .iter()
        .filter(|d| d.provider == index)
        .flat_map(|d| d.headers.iter().map(|(_, v)| v.as_str()))
        .filter(|v| v.len() >= 8);
    let secrets: Vec<&str> = provider
        .secrets()
        .chain(previous)
        .chain(deployment_headers)
        .collect();
    Redactor::new(&secrets)
}

/// The router's credentials: the config's, and those set since.
#[derive(Debug)]
pub(crate) struct CredentialCell {
    first: Credentials,
    /// The latest generation, once a key was set.
    set: RwLock<Option<Arc<Credentials>>>,
    /// `set` holds something: until then a call reads `first`, without
    /// the lock. Written after `set`, under it.
    any_set: AtomicBool,
    /// One swap at a time (each builds on the one before).
    swapping: Mutex<()>,
}

impl CredentialCell {
    /// The config's credentials, none set yet.
    pub(crate) fn new(config: &RouterConfig) -> CredentialCell {
        CredentialCell {
            first: Credentials::new(config),
            set: RwLock::new(None),
            any_set: AtomicBool::new(false),
            swapping: Mutex::new(()),
        }
    }

    /// What a call starting now keeps: `None` for the config's (no key
    /// was ever set), read with one atomic load.
    pub(crate) fn snapshot(&self) -> Option<Arc<Credentials>> {
        if !self.any_set.load(Ordering::Acquire) {
            return None;
        }
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The credentials of `snapshot` (a call's), `None` being the config's.
    pub(crate) fn of<'a>(&'a self, snapshot: Option<&'a Credentials>) -> &'a Credentials {
        snapshot.unwrap_or(&self.first)
    }

    /// Provider `provider`'s key is `key` for calls that start from now on;
    /// calls in flight keep theirs. Refused (nothing changed) when `key` is
    /// empty or cannot go in a header value; the error never repeats it.
    pub(crate) fn set_key(
        &self,
        config: &RouterConfig,
        provider: usize,
        key: &str,
    ) -> Result<(), ConfigError> {
        let field = "api_key";
        if key.is_empty() {
            return Err(ConfigError {
                field: field.to_owned(),
                message: "is empty".to_owned(),
            });
        }
        let key: Secret = checked_key(key, field)?;
        let _one = self.swapping.lock().unwrap_or_else(PoisonError::into_inner);
        let before = self.snapshot();
        let before = self.of(before.as_deref());
        let mut providers = before.providers.clone();
        let previous = std::mem::replace(&mut providers[provider].api_key, key);
        // The key before is hidden too: an upstream may echo it late (a
        // cache, a log), and a call's error must never show it. Only the
        // last one: the search stays the size of two keys.
        let previous = Some(previous.expose());
        let mut redactors = before.redactors.clone();
        redactors[provider] = Arc::new(redactor(config, &providers[provider], provider, previous));
        let next = Arc::new(Credentials {
            providers,
            redactors,
        });
        *self.set.write().unwrap_or_else(PoisonError::into_inner) = Some(next);
        self.any_set.store(true, Ordering::Release);
        Ok(())
    }
}
