//! The data dir's secret key and everything derived from it: keyed digests to find tokens,
//! authenticated encryption for secrets that must be read back, random token generation and
//! constant-time comparison. No secret handled here is ever logged.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Length of a token digest in bytes.
pub const DIGEST_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Keys derived from the 32-byte secret in `<data-dir>/secret.key`.
pub struct Secrets {
    digest_key: [u8; 32],
    cipher: XChaCha20Poly1305,
}

/// Errors opening the key file or decrypting.
#[derive(Debug)]
pub enum SecretsError {
    /// The key file could not be read or created.
    Io(std::io::Error),
    /// The key file does not hold exactly 32 bytes.
    BadKeyFile,
    /// The operating system's random source failed.
    Random,
    /// A sealed value failed authentication (wrong key or corrupted data).
    Unseal,
}

impl std::fmt::Display for SecretsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretsError::Io(e) => write!(f, "secret key file: {e}"),
            SecretsError::BadKeyFile => write!(f, "secret key file must hold exactly 32 bytes"),
            SecretsError::Random => write!(f, "the system random source failed"),
            SecretsError::Unseal => write!(f, "a stored secret failed authentication"),
        }
    }
}

impl std::error::Error for SecretsError {}

impl Secrets {
    /// Loads the key from `path`, creating it (32 random bytes, mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Secrets, SecretsError> {
        let key = match fs::read(path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| SecretsError::BadKeyFile)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random_array::<32>()?;
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(SecretsError::Io)?;
                file.write_all(&key).map_err(SecretsError::Io)?;
                file.sync_all().map_err(SecretsError::Io)?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(SecretsError::Io)?;
                // Make the new directory entry durable too: losing the key loses every secret.
                if let Some(dir) = path.parent() {
                    fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(SecretsError::Io)?;
                }
                key
            }
            Err(e) => return Err(SecretsError::Io(e)),
        };
        Ok(Secrets::from_key(&key))
    }

    /// Derives the working keys from a 32-byte master key.
    pub fn from_key(key: &[u8; 32]) -> Secrets {
        let digest_key = blake3::derive_key("spur 2026 token digest", key);
        let aead_key = blake3::derive_key("spur 2026 secret sealing", key);
        Secrets {
            digest_key,
            cipher: XChaCha20Poly1305::new(&aead_key.into()),
        }
    }

    /// The keyed digest under which a token is looked up.
    pub fn digest(&self, token: &str) -> [u8; DIGEST_LEN] {
        *blake3::keyed_hash(&self.digest_key, token.as_bytes()).as_bytes()
    }

    /// Encrypts `plain` with a fresh random nonce; the nonce is prepended to the result.
    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let nonce_bytes = random_array::<NONCE_LEN>()?;
        let nonce = XNonce::from(nonce_bytes);
        let sealed = self.cipher.encrypt(&nonce, plain).map_err(|_| SecretsError::Unseal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`Secrets::seal`] produced.
    pub fn unseal(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN).ok_or(SecretsError::Unseal)?;
        let nonce = XNonce::try_from(nonce).map_err(|_| SecretsError::Unseal)?;
        self.cipher.decrypt(&nonce, body).map_err(|_| SecretsError::Unseal)
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_array<const N: usize>() -> Result<[u8; N], SecretsError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| SecretsError::Random)?;
    Ok(buf)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A new token: `prefix` followed by 40 lower-case hex characters (20 random bytes).
pub fn new_token(prefix: &str) -> Result<String, SecretsError> {
    Ok(format!("{prefix}{}", hex(&random_array::<20>()?)))
}

/// A form token masked for one response, as Rails masks its CSRF token: a fresh random pad and
/// the token XOR the pad, in hex. Pages then never repeat the token's bytes, so compressing a
/// page that also reflects input cannot leak it (BREACH). Falls back to the token itself if the
/// system has no randomness to give.
pub fn mask_token(token: &str) -> String {
    let bytes = token.as_bytes();
    let mut pad = vec![0u8; bytes.len()];
    if getrandom::fill(&mut pad).is_err() {
        return token.to_string();
    }
    let masked: Vec<u8> = pad.iter().zip(bytes).map(|(p, b)| p ^ b).collect();
    format!("{}{}", hex(&pad), hex(&masked))
}

/// Whether `sent` is `token`, masked by [`mask_token`] or as it is; in constant time.
pub fn token_matches(sent: &str, token: &str) -> bool {
    if sent.len() == token.len() * 4 {
        let (pad, masked) = sent.split_at(token.len() * 2);
        if let (Some(pad), Some(masked)) = (from_hex(pad), from_hex(masked)) {
            let unmasked: Vec<u8> = pad.iter().zip(&masked).map(|(p, m)| p ^ m).collect();
            return constant_time_eq(&unmasked, token.as_bytes());
        }
    }
    constant_time_eq(sent.as_bytes(), token.as_bytes())
}

/// The bytes of lower- or upper-case hex text.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn a_masked_token_differs_each_time_and_still_matches() {
        let token = hex(&[7u8; 32]);
        let (a, b) = (mask_token(&token), mask_token(&token));
        assert_ne!(a, b);
        assert!(!a.contains(&token));
        assert!(token_matches(&a, &token) && token_matches(&b, &token));
        assert!(token_matches(&token, &token), "the plain token still works");
        assert!(!token_matches(&mask_token(&hex(&[8u8; 32])), &token));
        assert!(!token_matches("zz", &token));
        assert!(!token_matches(&"g".repeat(256), &token));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_tamper() {
        let s = Secrets::from_key(&[7u8; 32]);
        let sealed = s.seal(b"glptt-abc").unwrap();
        assert_eq!(s.unseal(&sealed).unwrap(), b"glptt-abc");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(s.unseal(&bad).is_err());
        assert!(Secrets::from_key(&[8u8; 32]).unseal(&sealed).is_err());
        assert!(s.unseal(&[1, 2, 3]).is_err());
    }

    #[test]
    fn tokens_have_the_gitlab_shape() {
        let t = new_token("glptt-").unwrap();
        assert_eq!(t.len(), 46);
        assert!(t[6..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn digests_are_keyed() {
        let a = Secrets::from_key(&[1u8; 32]);
        let b = Secrets::from_key(&[2u8; 32]);
        assert_ne!(a.digest("x"), b.digest("x"));
        assert_eq!(a.digest("x"), a.digest("x"));
    }
}
