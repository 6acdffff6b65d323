//! A string that never prints, and the redaction of credentials from
//! upstream text.

use std::fmt;

/// An API key or other credential. `Debug` and `Display` print a fixed
/// placeholder, so a config or error can be logged without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself; call only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a redacted credential is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Shorter values are not redacted: they would match ordinary words.
pub const MIN_REDACTED_LEN: usize = 4;

/// A run of this many consecutive characters of a secret is redacted, not
/// only the whole secret: providers echo a key's prefix or suffix
/// (`sk-proj-abc...xyz`). A secret shorter than this is redacted whole.
pub const RUN_LEN: usize = 16;

/// Base64 forms are looked for only where the secret's own part of its
/// encoding is at least this long: shorter ones would match ordinary text.
const MIN_BASE64_FORM: usize = 8;

/// `text` with every occurrence of each secret replaced by [`REDACTED`],
/// and every run of [`RUN_LEN`] or more of its consecutive characters,
/// however it is written:
///
/// - each character plain, as a JSON escape (`\uXXXX` in either case, `\/`,
///   `\"`, `\\`; text quoted twice doubles the backslashes),
///   percent-encoded (`%2F`, as in an echoed URL), percent-encoded twice
///   (`%252F`), or as an HTML character reference (`&#47;`, `&#x2f;`, and
///   the named ones of ASCII punctuation, `&sol;`; `&minus;`, `&hyphen;`
///   and `&dash;` also count as `-`, for which HTML has no name), in any
///   mix: one pass over the raw text covers them all;
/// - in base64 (an echoed `Authorization: Basic` header), standard or
///   URL-safe, at each of the three alignments the secret may have in the
///   encoded bytes: the characters that encode only the secret's bits are
///   matched (and runs of them), the one or two at each end that mix in
///   neighbouring bytes carry too little of it to matter.
///
/// Secrets shorter than [`MIN_REDACTED_LEN`] are left alone. The work is
/// linear in the text for a given secret (it runs on error bodies only).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    Redactor::new(secrets).redact(text)
}

/// The search for some secrets, compiled: what [`redact`] does, with the
/// work that depends only on the secrets (their base64 forms, the lookup
/// tables) done once. A router keeps one per provider, so an error body
/// pays only for its own bytes.
pub struct Redactor {
    forms: Vec<Form>,
    /// Per byte value, the first (form, index) holding it, then
    /// `next_same`: where a run may start for a character of the text, in
    /// increasing index per form.
    first_at: [u32; 256],
    starts: Vec<(usize, usize, u32)>,
    /// The pairs of consecutive bytes in some form, as a bit set: most
    /// places of a text start no pair, and are passed at once.
    pairs: Vec<u64>,
    /// Bytes that may start a run: one of some form, or the first byte of
    /// an escape (`\`, `%`, `&`). Every other byte is passed at once.
    lead: [bool; 256],
}

// The forms are the secrets themselves: never printed.
impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} forms)", self.forms.len())
    }
}

impl Redactor {
    /// The search for `secrets` (those shorter than [`MIN_REDACTED_LEN`]
    /// are left alone).
    pub fn new(secrets: &[&str]) -> Self {
        let mut forms: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.iter().filter(|s| s.len() >= MIN_REDACTED_LEN) {
            for form in forms_of(secret.as_bytes()) {
                if !forms.contains(&form) {
                    forms.push(form);
                }
            }
        }
        let forms: Vec<Form> = forms
            .into_iter()
            .map(|bytes| Form {
                need: bytes.len().min(RUN_LEN),
                branches: bytes.iter().any(|b| matches!(b, b'\\' | b'%' | b'&')),
                bytes,
            })
            .collect();
        let mut first_at = [NONE; 256];
        let mut starts = Vec::new();
        // Built backwards, so each list runs forwards.
        for (f, form) in forms.iter().enumerate().rev() {
            for (k, &c) in form.bytes.iter().enumerate().rev() {
                starts.push((f, k, first_at[usize::from(c)]));
                first_at[usize::from(c)] = (starts.len() - 1) as u32;
            }
        }
        let mut pairs = Vec::new();
        if !forms.is_empty() {
            pairs = vec![0u64; 65536 / 64];
            for w in forms.iter().flat_map(|f| f.bytes.windows(2)) {
                let pair = usize::from(w[0]) << 8 | usize::from(w[1]);
                pairs[pair / 64] |= 1 << (pair % 64);
            }
        }
        let mut lead = [false; 256];
        for (c, lead) in lead.iter_mut().enumerate() {
            *lead = first_at[c] != NONE || matches!(c as u8, b'\\' | b'%' | b'&');
        }
        Redactor {
            forms,
            first_at,
            starts,
            pairs,
            lead,
        }
    }

    /// Whether there is nothing to look for (every secret too short).
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `text` with every run found replaced, leftmost first, longest.
    pub fn redact(&self, text: &str) -> String {
        if self.forms.is_empty() {
            return text.to_owned();
        }
        Search {
            r: self,
            seen: std::collections::HashSet::new(),
            stack: Vec::new(),
        }
        .redact(text)
    }
}

/// The secret, then the parts of its base64 encodings that depend on it
/// alone (deduplicated).
fn forms_of(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = vec![secret.to_vec()];
    for alphabet in [BASE64, BASE64_URL] {
        for align in 0..3 {
            let form = base64_core(secret, align, alphabet);
            if form.len() >= MIN_BASE64_FORM && !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    forms
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters of `secret` preceded by `align` other bytes that
/// encode secret bits only: character `t` holds bits `6t..6t+6` of the
/// bytes, the secret's are `8 align..8 (align + len)`.
fn base64_core(secret: &[u8], align: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let bit = |i: usize| {
        let byte = secret[i / 8 - align];
        (byte >> (7 - i % 8)) & 1
    };
    let (first_bit, end_bit) = (8 * align, 8 * (align + secret.len()));
    let first = first_bit.div_ceil(6);
    let last = end_bit / 6; // exclusive
    (first..last)
        .map(|t| {
            let index = (6 * t..6 * t + 6).fold(0usize, |v, i| v << 1 | usize::from(bit(i)));
            alphabet[index]
        })
        .collect()
}

/// One form of a secret to find.
struct Form {
    bytes: Vec<u8>,
    /// The shortest run redacted: [`RUN_LEN`], or the whole when shorter.
    need: usize,
    /// It has a character that may be written two ways at one place (`\`
    /// as `\` or `\\`, `%` or `%25`, `&` or `&amp;`): the search must
    /// try each way, and remember where it has been.
    branches: bool,
}

/// One redaction's walk over a text, with its buffers.
struct Search<'r> {
    r: &'r Redactor,
    /// (form, index in it, position in the text) triples already reached.
    seen: std::collections::HashSet<(usize, usize, usize)>,
    stack: Vec<(usize, usize)>,
}

const NONE: u32 = u32::MAX;

/// Whether `text[j..]` starts a character (UTF-8 continuation bytes are
/// 0x80..=0xBF).
fn boundary(text: &[u8], j: usize) -> bool {
    text.get(j).is_none_or(|&b| !(0x80..0xC0).contains(&b))
}

impl Search<'_> {
    /// `text` with every run found replaced, leftmost first, longest.
    fn redact(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::new();
        let mut copied = 0; // bytes of `text` already in `out`
        let mut i = 0;
        while i < bytes.len() {
            // Only a lead byte can start a run.
            let end = match self.r.lead[usize::from(bytes[i])] && boundary(bytes, i) {
                true => self.run_at(bytes, i),
                false => None,
            };
            match end {
                Some(end) => {
                    out.push_str(&text[copied..i]);
                    out.push_str(REDACTED);
                    copied = end;
                    i = end;
                }
                None => i += 1,
            }
        }
        if copied == 0 {
            return text.to_owned();
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Where the longest run long enough for its form, written from `at`,
    /// ends (on a character boundary), if there is one.
    fn run_at(&mut self, text: &[u8], at: usize) -> Option<usize> {
        // (length, end) of the best run so far.
        let mut best: Option<(usize, usize)> = None;
        for (c, end) in decodings(text, at).into_iter().flatten() {
            let mut s = self.r.first_at[usize::from(c)];
            // Every form is at least two characters long.
            let pair = |d: u8| {
                let pair = usize::from(c) << 8 | usize::from(d);
                self.r.pairs[pair / 64] & (1 << (pair % 64)) != 0
            };
            if s == NONE
                || !decodings(text, end)
                    .into_iter()
                    .flatten()
                    .any(|(d, _)| pair(d))
            {
                continue;
            }
            while s != NONE {
                let (f, k, next) = self.r.starts[s as usize];
                s = next;
                let (size, need) = (self.r.forms[f].bytes.len(), self.r.forms[f].need);
                // No later index of this form can beat the best.
                if best.is_some_and(|(len, _)| len >= size - k) {
                    continue;
                }
                let Some((reached, stop)) = self.extend(text, f, k + 1, end) else {
                    continue;
                };
                let len = reached - k;
                if len >= need && best.is_none_or(|b| (len, stop) > b) {
                    best = Some((len, stop));
                }
            }
        }
        best.map(|(_, end)| end)
    }

    /// From index `k` of form `f` at text position `j` (a character already
    /// matched before them): the furthest index reachable and where it
    /// ends, on a character boundary of the text.
    fn extend(&mut self, text: &[u8], f: usize, k: usize, j: usize) -> Option<(usize, usize)> {
        let form = &self.r.forms[f];
        if !form.branches {
            // One way to write each character here: follow it.
            let (mut k, mut j) = (k, j);
            let mut best = boundary(text, j).then_some((k, j));
            while k < form.bytes.len() {
                let want = form.bytes[k];
                let Some((_, end)) = decodings(text, j)
                    .into_iter()
                    .flatten()
                    .find(|&(c, _)| c == want)
                else {
                    break;
                };
                (k, j) = (k + 1, end);
                if boundary(text, j) {
                    best = Some((k, j));
                }
            }
            return best;
        }
        // A character may be written several ways (a backslash as `\`,
        // `\\`, `\\\\` or `\u005c`): search the ways, each (index,
        // position) pair once.
        self.seen.clear();
        self.stack.clear();
        self.stack.push((k, j));
        let mut best = None;
        while let Some((k, j)) = self.stack.pop() {
            if boundary(text, j) && best.is_none_or(|b| (k, j) > b) {
                best = Some((k, j));
            }
            if k == form.bytes.len() || !self.seen.insert((f, k, j)) {
                continue;
            }
            let want = form.bytes[k];
            for (c, end) in decodings(text, j).into_iter().flatten() {
                if c == want {
                    self.stack.push((k + 1, end));
                }
            }
        }
        best
    }
}

/// Longest run of backslashes looked at: text quoted five times puts 31
/// before an escape. Bounds the work per position.
const MAX_BACKSLASHES: usize = 64;

/// The characters that may be written at `j`, each with the position after
/// it: the byte itself; a percent-encoding (once or twice); an HTML
/// character reference; an escaped backslash (`\\`, `\\\\`), or a JSON
/// escape after the run of backslashes that quote it.
fn decodings(text: &[u8], j: usize) -> [Option<(u8, usize)>; 5] {
    let mut out = [None; 5];
    let Some(&b) = text.get(j) else {
        return out;
    };
    out[0] = Some((b, j + 1));
    match b {
        b'%' => {
            out[1] = hex_byte(text, j + 1).map(|c| (c, j + 3));
            if text.get(j + 1..j + 3) == Some(b"25") {
                out[2] = hex_byte(text, j + 3).map(|c| (c, j + 5));
            }
        }
        b'&' => out[1] = html_reference(text, j),
        b'\\' => {
            let run = text[j..]
                .iter()
                .take(MAX_BACKSLASHES)
                .take_while(|&&b| b == b'\\')
                .count();
            // An escaped backslash: `\\` once quoted, `\\\\` twice.
            if run >= 2 {
                out[1] = Some((b'\\', j + 2));
            }
            if run >= 4 {
                out[2] = Some((b'\\', j + 4));
            }
            // An escape after the run of backslashes that quote it.
            let next = j + run;
            out[3] = match text.get(next) {
                Some(b'u') => text
                    .get(next + 1..next + 5)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(|code| u8::try_from(code).ok())
                    .map(|c| (c, next + 5)),
                Some(&e @ (b'/' | b'"')) => Some((e, next + 1)),
                Some(b't') => Some((b'\t', next + 1)),
                _ => None,
            };
        }
        _ => {}
    }
    out
}

/// Two hex digits at `at`, as a byte.
fn hex_byte(text: &[u8], at: usize) -> Option<u8> {
    let h = text.get(at..at + 2)?;
    u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
}

/// The HTML character reference at `at` (its `&`): `&#DDD;` or `&#xHH;`
/// (`;` optional, as browsers read them; up to 8 digits) or a name from
/// [`HTML_NAMES`], with where it ends.
fn html_reference(text: &[u8], at: usize) -> Option<(u8, usize)> {
    let rest = text.get(at + 1..)?;
    if let Some(number) = rest.strip_prefix(b"#") {
        let (radix, digits_at) = match number.first() {
            Some(b'x' | b'X') => (16, 2),
            _ => (10, 1),
        };
        let digits = rest[digits_at..]
            .iter()
            .take(8)
            .take_while(|d| d.is_ascii_digit() || (radix == 16 && d.is_ascii_hexdigit()))
            .count();
        if digits == 0 {
            return None;
        }
        let mut end = at + 1 + digits_at + digits;
        let code = std::str::from_utf8(&text[end - digits..end]).ok()?;
        let code = u8::try_from(u32::from_str_radix(code, radix).ok()?).ok()?;
        if text.get(end) == Some(&b';') {
            end += 1;
        }
        return Some((code, end));
    }
    HTML_NAMES.iter().find_map(|&(name, c)| {
        let named = rest.strip_prefix(name.as_bytes())?;
        (named.first() == Some(&b';')).then_some((c, at + 2 + name.len()))
    })
}

/// HTML's named references of ASCII punctuation (and three that read as
/// `-`, which has none), as an escaper may write a key's characters.
const HTML_NAMES: &[(&str, u8)] = &[
    ("minus", b'-'),
    ("hyphen", b'-'),
    ("dash", b'-'),
    ("lowbar", b'_'),
    ("UnderBar", b'_'),
    ("period", b'.'),
    ("sol", b'/'),
    ("bsol", b'\\'),
    ("plus", b'+'),
    ("equals", b'='),
    ("colon", b':'),
    ("semi", b';'),
    ("comma", b','),
    ("excl", b'!'),
    ("quest", b'?'),
    ("num", b'#'),
    ("dollar", b'$'),
    ("percnt", b'%'),
    ("amp", b'&'),
    ("AMP", b'&'),
    ("quot", b'"'),
    ("QUOT", b'"'),
    ("apos", b'\''),
    ("lpar", b'('),
    ("rpar", b')'),
    ("ast", b'*'),
    ("midast", b'*'),
    ("lt", b'<'),
    ("LT", b'<'),
    ("gt", b'>'),
    ("GT", b'>'),
    ("commat", b'@'),
    ("lsqb", b'['),
    ("lbrack", b'['),
    ("rsqb", b']'),
    ("rbrack", b']'),
    ("Hat", b'^'),
    ("grave", b'`'),
    ("DiacriticalGrave", b'`'),
    ("lcub", b'{'),
    ("lbrace", b'{'),
    ("rcub", b'}'),
    ("rbrace", b'}'),
    ("verbar", b'|'),
    ("vert", b'|'),
    ("VerticalLine", b'|'),
    ("Tab", b'\t'),
];

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ab/cd\"ef";

    #[test]
    fn a_compiled_redactor_is_reused_and_never_prints_its_secrets() {
        let long = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyz";
        let r = Redactor::new(&[long, KEY, "abc"]);
        assert!(!format!("{r:?}").contains("sk-"));
        for text in [
            format!("key {long} echoed"),
            format!("{{\"error\": \"bad key {KEY}\"}}"),
            "nothing to hide here \\ % &amp;".to_owned(),
            format!("prefix {} only", &long[..20]),
        ] {
            // The same text twice through one Redactor, and through the
            // one-off function: one answer.
            let once = redact(&text, &[long, KEY, "abc"]);
            assert_eq!(r.redact(&text), once);
            assert_eq!(r.redact(&text), once);
        }
        assert_eq!(r.redact(&format!("a {long} b")), "a <redacted> b");
        assert!(Redactor::new(&["abc"]).is_empty());
    }

    fn escaped_forms() -> Vec<String> {
        let all_u: String = KEY
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let all_u_upper: String = KEY
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect();
        vec![
            KEY.to_owned(),
            serde_json::to_string(KEY).unwrap(),          // \"
            KEY.replace('/', "\\/").replace('"', "\\\""), // PHP
            KEY.replace('/', "\\u002f").replace('"', "\\u0022"), // Go
            all_u,
            all_u_upper,
            // Quoted twice: JSON text inside a JSON string.
            serde_json::to_string(&serde_json::to_string(KEY).unwrap()).unwrap(),
            KEY.replace('/', "\\\\\\/").replace('"', "\\\\\\\""),
            // Percent-encoded, as in an echoed URL, in either case.
            KEY.replace('/', "%2F").replace('"', "%22"),
            KEY.bytes().map(|b| format!("%{b:02x}")).collect(),
        ]
    }

    #[test]
    fn every_json_escaping_of_a_secret_is_redacted() {
        for form in escaped_forms() {
            let text = format!("{{\"error\": \"bad key {form} given\"}}");
            let out = redact(&text, &[KEY]);
            assert!(out.contains(REDACTED), "{form}: {out}");
            assert!(
                !out.contains("sk-ab") && !out.contains("cd"),
                "{form}: {out}"
            );
            assert!(out.starts_with("{\"error\": \"bad key ") && out.ends_with(" given\"}"));
        }
    }

    #[test]
    fn text_without_the_secret_is_unchanged() {
        let text = "no key here: sk-ab\\/c \\u0073k \\\\ \\";
        assert_eq!(redact(text, &[KEY]), text);
        assert_eq!(redact("sk-x", &["abc"]), "sk-x"); // too short to redact
        assert_eq!(redact("", &[KEY]), "");
    }

    #[test]
    fn backslashes_of_a_key_in_every_form() {
        let key = "ab\\\\cd\\ef"; // ab\\cd\ef: three backslashes
        for form in [
            key.to_owned(),
            serde_json::to_string(key).unwrap(),
            serde_json::to_string(&serde_json::to_string(key).unwrap()).unwrap(),
            key.replace('\\', "\\u005c"),
            key.replace('\\', "\\u005C"),
            key.replace('\\', "%5C"),
        ] {
            let out = redact(&format!("x {form} y"), &[key]);
            assert!(
                out.contains(REDACTED) && !out.contains("ab") && !out.contains("cd"),
                "{form}: {out}"
            );
        }
        // The fuzzer's cases: a backslash as \u005c right after an escaped
        // backslash, and two backslashes in a row.
        for (key, text) in [
            ("k\\\\u-0123", "k\\\\\\\\u-0123"),
            ("12345678\\\\", "12345678\\u005c\\\\"),
            ("\\\\abcdefgh", "\\\\abcdefgh"),
        ] {
            let out = redact(text, &[key]);
            assert!(
                !out.contains("abcdefgh") && !out.contains("0123") && !out.contains("5678"),
                "{key:?} in {text:?}: {out}"
            );
        }
    }

    #[test]
    fn several_occurrences_and_secrets() {
        let out = redact(
            "a sk-ab/cd\"ef b sk-ab\\/cd\\\"ef c tok-12345678",
            &[KEY, "tok-12345678"],
        );
        assert_eq!(out, "a <redacted> b <redacted> c <redacted>");
    }

    /// A key of the usual shape, longer than [`RUN_LEN`].
    const LONG_KEY: &str = "sk-proj-Ab3dE_fGh1jKlMn0pQrStUvWxYz2";

    /// Plain base64 with padding, for the tests (the standard alphabet, or
    /// the URL-safe one).
    fn base64(bytes: &[u8], url: bool) -> String {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        use base64::Engine as _;
        if url {
            URL_SAFE.encode(bytes)
        } else {
            STANDARD.encode(bytes)
        }
    }

    /// Whether `out` still holds `secret`'s part of `encoded` (`secret`
    /// after `align` bytes): the characters that encode only its bits.
    fn holds_base64_core(out: &str, secret: &str, align: usize, url: bool) -> bool {
        let alphabet = if url { BASE64_URL } else { BASE64 };
        let core = base64_core(secret.as_bytes(), align, alphabet);
        out.contains(std::str::from_utf8(&core).unwrap())
    }

    #[test]
    fn percent_encoded_twice_and_html_references_are_redacted() {
        let hex_all = |f: &dyn Fn(u8) -> String| -> String { LONG_KEY.bytes().map(f).collect() };
        for form in [
            LONG_KEY.replace('-', "%252D").replace('_', "%255f"),
            hex_all(&|b| format!("%25{b:02X}")),
            LONG_KEY.replace('-', "&#45;"),
            LONG_KEY.replace('-', "&#x2d;").replace('_', "&#X5F;"),
            LONG_KEY.replace('-', "&#0045").replace('_', "&lowbar;"),
            LONG_KEY.replace('-', "&minus;"),
            LONG_KEY.replace('-', "&hyphen;").replace('_', "&UnderBar;"),
            hex_all(&|b| format!("&#{b};")),
            hex_all(&|b| format!("&#x{b:x};")),
            // Mixed with the JSON forms.
            LONG_KEY
                .replace('-', "\\u002d")
                .replace('_', "&#95;")
                .replace('p', "%2570"),
        ] {
            let text = format!("<p>invalid key {form}</p>");
            let out = redact(&text, &[LONG_KEY]);
            assert_eq!(out, "<p>invalid key <redacted></p>", "{form}");
        }
        // Not references: left alone.
        let text = "&#; &#x; &bogus; &amp &#99999999999; %25 %25G0 %2";
        assert_eq!(redact(text, &[LONG_KEY]), text);
    }

    #[test]
    fn base64_at_every_alignment_in_both_alphabets_is_redacted() {
        for url in [false, true] {
            for prefix in ["", ":", "u:", "user:", "Bearer "] {
                let encoded = base64(format!("{prefix}{LONG_KEY}").as_bytes(), url);
                for text in [
                    format!("{{\"echo\": \"Authorization: Basic {encoded}\"}}"),
                    // JSON's escaped slash.
                    format!("{{\"echo\": \"{}\"}}", encoded.replace('/', "\\/")),
                ] {
                    let out = redact(&text, &[LONG_KEY]);
                    let align = prefix.len() % 3;
                    assert!(
                        out.contains(REDACTED) && !holds_base64_core(&out, LONG_KEY, align, url),
                        "{prefix:?} {url}: {text} -> {out}"
                    );
                }
            }
        }
        // A key whose encoding has `+` and `/` (or `-` and `_`).
        let key = "\u{00fb}\u{00ff}\u{00bf}key-with-high-bytes";
        for url in [false, true] {
            let encoded = base64(key.as_bytes(), url);
            assert!(encoded.contains(if url { '_' } else { '/' }), "{encoded}");
            let out = redact(&format!("x {encoded} y"), &[key]);
            assert!(!holds_base64_core(&out, key, 0, url), "{out}");
        }
    }

    #[test]
    fn runs_of_sixteen_characters_are_redacted_shorter_ones_kept() {
        let prefix = &LONG_KEY[..20];
        let suffix = &LONG_KEY[LONG_KEY.len() - 16..];
        let middle = &LONG_KEY[5..25];
        for (piece, form) in [
            (prefix, prefix.to_owned()),
            (suffix, suffix.to_owned()),
            (middle, middle.to_owned()),
            (prefix, prefix.replace('-', "\\u002d")),
            (suffix, suffix.replace('_', "%5F")),
        ] {
            let out = redact(&format!("key {form}... was revoked"), &[LONG_KEY]);
            assert_eq!(out, "key <redacted>... was revoked", "{piece}");
        }
        // 15 characters: a prefix too short to identify the key.
        let short = &LONG_KEY[..15];
        let text = format!("key {short}... was revoked");
        assert_eq!(redact(&text, &[LONG_KEY]), text);
        // A secret shorter than RUN_LEN is redacted only whole.
        assert_eq!(
            redact("tok-1234567 tok-123456", &["tok-1234567"]),
            "<redacted> tok-123456"
        );
        // Two runs of one key, and a run of it in base64.
        let out = redact(&format!("{prefix} and {suffix}"), &[LONG_KEY]);
        assert_eq!(out, "<redacted> and <redacted>");
        let encoded = base64(&LONG_KEY.as_bytes()[..18], false);
        let out = redact(&format!("Basic {encoded}"), &[LONG_KEY]);
        assert!(out.starts_with("Basic <redacted>"), "{out}");
    }

    #[test]
    fn non_ascii_secrets_and_texts_never_split_a_character() {
        // (Runs count bytes: 31 here, of 2-byte characters.)
        let key = "ключ-ключ-ключ-ключ-ключ";
        let cases = [
            (key.to_owned(), "<redacted>".to_owned()),
            (format!("é{}é", &key[2..33]), "é<redacted>é".to_owned()),
            ("ключ-к".to_owned(), "ключ-к".to_owned()),
            (
                "é\\u00d0\\u00ba\\u00d0".to_owned(),
                "é\\u00d0\\u00ba\\u00d0".to_owned(),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(&text, &[key, "ééééééééééé"]), expected, "{text}");
        }
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("sk-live-123");
        assert!(!format!("{s:?}").contains("sk-live"));
        assert!(!format!("{s}").contains("sk-live"));
        assert_eq!(s.expose(), "sk-live-123");
    }
}
