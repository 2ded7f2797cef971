//! Replaces secrets in a job's output stream with `[MASKED]`, also when a secret is split across
//! chunks: the tail that could still begin a secret is held back until the next chunk, and only
//! that tail, so that a quiet job's last line shows at once.

use aho_corasick::{AhoCorasick, MatchKind};

const MASK: &[u8] = b"[MASKED]";

/// A streaming masker for one job's output.
pub struct Masker {
    finder: Option<AhoCorasick>,
    secrets: Vec<Vec<u8>>,
    longest: usize,
    carry: Vec<u8>,
}

/// Past this many bytes of secrets times the longest one, a tail is held back whole rather
/// than compared with every secret.
const MAX_PREFIX_WORK: usize = 1 << 22;

impl Masker {
    /// A masker for `secrets` (empty ones are ignored).
    pub fn new(secrets: &[String]) -> Masker {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
        let finder = if secrets.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&secrets)
                .ok()
        };
        Masker {
            finder,
            secrets: secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
            longest,
            carry: Vec::new(),
        }
    }

    /// Masks `chunk` and passes on what is safe to write now.
    pub fn push(&mut self, chunk: &[u8], out: &mut impl FnMut(&[u8])) {
        let Some(finder) = &self.finder else {
            out(chunk);
            return;
        };
        let held = std::mem::take(&mut self.carry);
        let owned;
        let buf: &[u8] = if held.is_empty() {
            chunk
        } else {
            owned = [held.as_slice(), chunk].concat();
            &owned
        };
        // A secret that continues in the next chunk starts within the last `longest - 1` bytes,
        // where the rest of the chunk is the beginning of a secret.
        let safe = buf.len().saturating_sub(self.longest - 1);
        let hold = self.held_from(buf, safe);
        let mut written = 0;
        for m in finder.find_iter(buf) {
            if m.start() >= hold {
                break;
            }
            out(&buf[written..m.start()]);
            out(MASK);
            written = m.end();
        }
        let keep_from = written.max(hold);
        out(&buf[written..keep_from]);
        self.carry = buf[keep_from..].to_vec();
    }

    /// Where the tail of `buf` that begins some secret starts (from `safe` on); the end of
    /// `buf` when none does.
    fn held_from(&self, buf: &[u8], safe: usize) -> usize {
        let total: usize = self.secrets.iter().map(Vec::len).sum();
        if total.saturating_mul(self.longest) > MAX_PREFIX_WORK {
            return safe;
        }
        (safe..buf.len())
            .find(|&p| self.secrets.iter().any(|s| s.starts_with(&buf[p..])))
            .unwrap_or(buf.len())
    }

    /// Masks and passes on what was held back.
    pub fn finish(&mut self, out: &mut impl FnMut(&[u8])) {
        let held = std::mem::take(&mut self.carry);
        let Some(finder) = &self.finder else {
            out(&held);
            return;
        };
        let mut written = 0;
        for m in finder.find_iter(&held) {
            out(&held[written..m.start()]);
            out(MASK);
            written = m.end();
        }
        out(&held[written..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secrets: &[&str], chunks: &[&str]) -> String {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let mut m = Masker::new(&secrets);
        let mut out = Vec::new();
        for c in chunks {
            m.push(c.as_bytes(), &mut |b| out.extend_from_slice(b));
        }
        m.finish(&mut |b| out.extend_from_slice(b));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn masks_whole_and_split_secrets() {
        assert_eq!(run(&["s3cr3tvalue"], &["a s3cr3tvalue b"]), "a [MASKED] b");
        assert_eq!(run(&["s3cr3tvalue"], &["a s3cr", "3tva", "lue b"]), "a [MASKED] b");
        assert_eq!(
            run(
                &["s3cr3tvalue"],
                &["s", "3", "c", "r", "3", "t", "v", "a", "l", "u", "e"]
            ),
            "[MASKED]"
        );
        assert_eq!(
            run(&["token-1", "token-12"], &["x token-12 y token-1"]),
            "x [MASKED] y [MASKED]"
        );
        assert_eq!(run(&[], &["plain ", "text"]), "plain text");
        assert_eq!(
            run(&["s3cr3tvalue"], &["xx s3cr3tvalue yy", " zz"]),
            "xx [MASKED] yy zz"
        );
        assert_eq!(run(&["abcdefgh"], &["abcdefg"]), "abcdefg");
    }

    #[test]
    fn only_a_tail_that_begins_a_secret_is_held_back() {
        let mut m = Masker::new(&["glcbt-0123456789".to_string()]);
        let mut out = Vec::new();
        m.push(b"started\n", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"started\n");
        m.push(b"next glc", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"started\nnext ");
        m.push(b"bt-0123456789!", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"started\nnext [MASKED]!");
    }

    #[test]
    fn every_split_point_is_masked() {
        let text = "before glcbt-0123456789 middle glcbt-0123456789 after";
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            let got = run(&["glcbt-0123456789"], &[a, b]);
            assert_eq!(got, "before [MASKED] middle [MASKED] after", "cut at {cut}");
        }
    }
}
