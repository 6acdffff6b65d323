//! The `weighted` policy's picks: smooth weighted round-robin (nginx's
//! algorithm), over the providers usable at the moment of the pick.
//!
//! Each pick adds every usable provider's weight to its running score,
//! takes the highest (the first among equals), and subtracts the total of
//! the weights from it. Weights 5:1:1 give `a a b a c a a`, and every run of
//! sum-of-weights consecutive picks over the same usable set matches the
//! weights exactly. An unusable provider is left out of the pick (its score
//! untouched), so its share goes to the others while it is out.

/// Running scores, one per provider.
#[derive(Clone, Debug, Default)]
pub struct Picker {
    scores: Vec<i64>,
}

impl Picker {
    /// Scores for `n` providers, all zero.
    pub fn new(n: usize) -> Self {
        Picker { scores: vec![0; n] }
    }

    /// Pick among `usable` (provider indices) by `weight`; providers of
    /// weight 0 are never picked here (they are fallbacks). `None` when no
    /// usable provider has a weight.
    pub fn pick(&mut self, usable: &[usize], weight: impl Fn(usize) -> u32) -> Option<usize> {
        let (best, total) = self.best(usable, &weight)?;
        for &i in usable {
            self.scores[i] += i64::from(weight(i));
        }
        self.scores[best] -= total;
        Some(best)
    }

    /// What [`Picker::pick`] would pick, without advancing the scores
    /// (`explain`).
    pub fn peek(&self, usable: &[usize], weight: impl Fn(usize) -> u32) -> Option<usize> {
        self.best(usable, &weight).map(|(best, _)| best)
    }

    /// The pick (the highest score once each weight is added, the first
    /// among equals) and the total of the weights.
    fn best(&self, usable: &[usize], weight: &impl Fn(usize) -> u32) -> Option<(usize, i64)> {
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for &i in usable {
            let w = i64::from(weight(i));
            if w == 0 {
                continue;
            }
            total += w;
            let score = self.scores[i] + w;
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| (i, total))
    }
}

/// The order a weighted call tries `usable` in: `first`, then the rest by
/// descending weight (config order among equals; weight-0 fallbacks last).
pub fn weighted_order(
    first: Option<usize>,
    usable: &[usize],
    weight: impl Fn(usize) -> u32,
) -> Vec<usize> {
    let mut rest: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&i| Some(i) != first)
        .collect();
    rest.sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    first.into_iter().chain(rest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> String {
        let mut p = Picker::new(weights.len());
        let all: Vec<usize> = (0..weights.len()).collect();
        (0..n)
            .map(|_| {
                let i = p.pick(&all, |i| weights[i]).unwrap();
                (b'a' + i as u8) as char
            })
            .collect()
    }

    #[test]
    fn five_one_one_is_nginx_sequence() {
        assert_eq!(picks(&[5, 1, 1], 14), "aabacaaaabacaa");
    }

    #[test]
    fn every_window_of_the_weight_sum_matches_the_weights() {
        let weights = [3, 2, 0, 1];
        let seq = picks(&weights, 60);
        for start in 0..=(60 - 6) {
            let window = &seq[start..start + 6];
            for (i, w) in weights.iter().enumerate() {
                let c = (b'a' + i as u8) as char;
                assert_eq!(window.matches(c).count(), *w as usize, "{window}");
            }
        }
    }

    #[test]
    fn unusable_providers_are_skipped_and_their_share_goes_elsewhere() {
        let weights = [1, 1, 1];
        let mut p = Picker::new(3);
        let got: Vec<usize> = (0..4)
            .map(|_| p.pick(&[0, 2], |i| weights[i]).unwrap())
            .collect();
        assert_eq!(got, [0, 2, 0, 2]);
        assert_eq!(p.pick(&[], |i| weights[i]), None);
        assert_eq!(Picker::new(2).pick(&[0, 1], |_| 0), None);
    }

    #[test]
    fn the_rest_follow_by_descending_weight() {
        let weights = [1, 0, 5, 3];
        assert_eq!(
            weighted_order(Some(3), &[0, 1, 2, 3], |i| weights[i]),
            [3, 2, 0, 1]
        );
        assert_eq!(weighted_order(None, &[0, 1], |i| weights[i]), [0, 1]);
    }
}
