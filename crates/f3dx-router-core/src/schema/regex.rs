//! What a schema's regular expressions may hold: the compiled size limit,
//! and the estimate of each one's bytes read from its text (the schema
//! cache's cost, [`super::COST_PER_NODE`]).

/// The most a regex is reckoned to hold (see [`regex_cost`]): each is
/// compiled within [`REGEX_SIZE_LIMIT`]. (The estimate was measured with
/// the regex crate's lazy DFAs, at most about 1.8 MB for one pattern;
/// regex-lite holds less, `tests/schema_memory.rs` checks it stays under.)
pub const COST_PER_REGEX: u64 = 2 * 1024 * 1024;
/// The compiled size limit of each regex of a schema (a larger one makes
/// the schema invalid).
pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// About the bytes `pattern` holds once compiled (its program and its lazy
/// DFA's cache): [`BYTES_PER_STATE`] per automaton state ([`regex_states`])
/// and 16 KiB more, at most [`COST_PER_REGEX`]. A pattern with a
/// lookaround or a backreference is charged [`COST_PER_REGEX`] whole
/// (regex-lite refuses those, and the schema is not judged; the charge
/// stays from when they were compiled, one of 50 characters held 1.8 MB).
pub(super) fn regex_cost(pattern: &str) -> u64 {
    let fancy = ["(?=", "(?!", "(?<=", "(?<!"]
        .iter()
        .any(|l| pattern.contains(l))
        || pattern
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b'\\' && w[1].is_ascii_digit() && w[1] != b'0');
    if fancy {
        return COST_PER_REGEX;
    }
    regex_states(pattern)
        .saturating_mul(BYTES_PER_STATE)
        .saturating_add(16 * 1024)
        .min(COST_PER_REGEX)
}

/// The bytes of a compiled regex per automaton state, measured: 30 to 70
/// for ASCII classes, about 180 for Unicode ones (counted 1024 states each).
pub(super) const BYTES_PER_STATE: u64 = 128;

/// About the automaton states `pattern` compiles to: each atom is one (an
/// ASCII class `\w`, `\d`, `\s` four, `.` sixteen, a Unicode class `\p{..}`
/// 1024), a group the sum of its parts, and a counted repetition (`{n}`,
/// `{n,m}`, `{n,}`) multiplies what it repeats by its upper bound
/// (saturating). One pass over the text, no recursion.
pub(super) fn regex_states(pattern: &str) -> u64 {
    let b = pattern.as_bytes();
    // Per open group: (states so far, the last atom's states).
    let mut groups: Vec<(u64, u64)> = vec![(0, 0)];
    let mut i = 0;
    while i < b.len() {
        let (atom, next) = match b[i] {
            b'\\' => match b.get(i + 1) {
                Some(b'p' | b'P') => (1024, skip_braces(b, i + 2)),
                Some(b'w' | b'W' | b'd' | b'D' | b's' | b'S') => (4, i + 2),
                _ => (1, i + 2),
            },
            b'[' => {
                let end = class_end(b, i);
                let unicode = b[i..end].windows(2).any(|w| w == b"\\p" || w == b"\\P");
                (if unicode { 1024 } else { 4 }, end)
            }
            b'.' => (16, i + 1),
            b'(' => {
                groups.push((0, 0));
                i += 1;
                continue;
            }
            b')' if groups.len() > 1 => {
                let (inner, _) = groups.pop().unwrap_or_default();
                (inner.saturating_add(1), i + 1)
            }
            b'{' => match counted(b, i) {
                Some((high, end)) => {
                    let top = groups.last_mut().expect("a group is open");
                    let grown = top.1.saturating_mul(high.max(1));
                    top.0 = top.0.saturating_sub(top.1).saturating_add(grown);
                    top.1 = grown;
                    i = end;
                    continue;
                }
                None => (1, i + 1),
            },
            b'*' | b'+' | b'?' | b'|' | b'^' | b'$' => {
                i += 1;
                continue;
            }
            _ => (1, i + 1),
        };
        let top = groups.last_mut().expect("a group is open");
        top.0 = top.0.saturating_add(atom);
        top.1 = atom;
        i = next;
    }
    groups.iter().fold(0u64, |sum, g| sum.saturating_add(g.0))
}

/// After `{...}` at `at`, if there is one.
fn skip_braces(b: &[u8], at: usize) -> usize {
    match (
        b.get(at),
        b[at.min(b.len())..].iter().position(|&c| c == b'}'),
    ) {
        (Some(b'{'), Some(end)) => at + end + 1,
        _ => at + 1,
    }
}

/// The end of the character class opening at `at` (after its `]`).
fn class_end(b: &[u8], at: usize) -> usize {
    let mut j = at + 1;
    // A `]` first in the class is a member.
    if b.get(j) == Some(&b'^') {
        j += 1;
    }
    if b.get(j) == Some(&b']') {
        j += 1;
    }
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b']' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// The upper bound of the counted repetition `{n}`, `{n,m}` or `{n,}` at
/// `at` (`{n,}` counts n + 1), and where it ends; `None` when the brace is
/// a literal.
fn counted(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let len = b[at + 1..].iter().position(|&c| c == b'}')?;
    let inside = std::str::from_utf8(&b[at + 1..at + 1 + len]).ok()?;
    let (low, high) = match inside.split_once(',') {
        None => (inside, Some(inside)),
        Some((low, "")) => (low, None),
        Some((low, high)) => (low, Some(high)),
    };
    let low: u64 = low.trim().parse().ok()?;
    let high = match high {
        Some(h) => h.trim().parse().ok()?,
        None => low.saturating_add(1),
    };
    Some((high, at + len + 2))
}
