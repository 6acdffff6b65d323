//! What the router remembers about each provider between calls.

use crate::time::Instant;

/// Per-provider state shared by all calls of a router.
#[derive(Clone, Debug, Default)]
pub struct ProviderHealth {
    /// Set by a `Retry-After`: the provider asked not to be called before.
    pub cooldown_until: Option<Instant>,
}

impl ProviderHealth {
    /// Whether the provider may be called at `now`.
    pub fn usable(&self, now: Instant) -> bool {
        self.cooldown_until.is_none_or(|t| t <= now)
    }
}

/// The providers usable at `now`, in config order.
pub fn usable(health: &[ProviderHealth], now: Instant) -> Vec<usize> {
    (0..health.len())
        .filter(|&i| health[i].usable(now))
        .collect()
}

/// Every provider in the order their cooldowns end (config order among
/// equals): the order to try them in when none is usable, so a call still
/// fails over as usual rather than failing untried.
pub fn recovery_order(health: &[ProviderHealth]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..health.len()).collect();
    // Stable: equal cooldowns keep config order.
    order.sort_by_key(|&i| health[i].cooldown_until);
    order
}

/// The providers a call may try, in order: the usable ones in config order;
/// if every provider is cooling down, all of them in recovery order.
pub fn candidates(health: &[ProviderHealth], now: Instant) -> Vec<usize> {
    let order = usable(health, now);
    if order.is_empty() {
        recovery_order(health)
    } else {
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cooling(until: u64) -> ProviderHealth {
        ProviderHealth {
            cooldown_until: Some(Instant::from_micros(until)),
        }
    }

    #[test]
    fn skips_cooling_providers_while_others_are_usable() {
        let h = [cooling(100), ProviderHealth::default(), cooling(5)];
        assert_eq!(candidates(&h, Instant::from_micros(10)), vec![1, 2]);
        assert_eq!(candidates(&h, Instant::from_micros(100)), vec![0, 1, 2]);
    }

    #[test]
    fn all_cooling_walks_them_in_the_order_they_recover() {
        let h = [cooling(100), cooling(50), cooling(70)];
        assert_eq!(candidates(&h, Instant::ZERO), vec![1, 2, 0]);
        let h = [cooling(70), cooling(50), cooling(70)];
        assert_eq!(candidates(&h, Instant::ZERO), vec![1, 0, 2]);
    }
}
