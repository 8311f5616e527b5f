//! This installation's long-term X25519 key pair, kept in the data folder.
//!
//! The file holds the private key as 64 hex digits; the public key (and from it the peer id)
//! is computed from it, so the two can never disagree. The file is created readable by its
//! owner only, and a looser mode found later is tightened with a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use curve25519_dalek::{EdwardsPoint, MontgomeryPoint, Scalar};
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};

use crate::protocol::ids::PeerId;
use crate::protocol::keys::{KEY_BYTES, PublicKey, Signature, Signer};

/// BLAKE3 context deriving the secret that makes signing nonces from the private key (as
/// Ed25519's hash prefix does; deterministic, so no random source can weaken a signature).
const NONCE_KEY_CONTEXT: &str = "pigeon 2026-12 signing nonce key from X25519 private key";

/// Name of the key file inside the data folder.
pub const KEY_FILE: &str = "identity.key";

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// What failed.
        source: io::Error,
    },
    /// The file exists but does not hold a key.
    #[error("key file {0} is damaged (expected 64 hex digits); move it away to create a new identity")]
    Damaged(String),
}

/// The key pair that is this installation's identity.
#[derive(Clone)]
pub struct Identity {
    private: [u8; KEY_BYTES],
    public: PublicKey,
    /// The private key as an Ed25519 signing key (see [`signing_key`]), with its public half.
    signing: (Scalar, [u8; 32], ed25519_dalek::VerifyingKey),
}

impl Identity {
    /// Loads the key from `dir`, creating a fresh one on first use.
    pub fn load_or_create(dir: &Path) -> Result<Identity, IdentityError> {
        let path = dir.join(KEY_FILE);
        let io_err = |source| IdentityError::Io { path: path.display().to_string(), source };
        match fs::read_to_string(&path) {
            Ok(text) => {
                tighten_mode(&path).map_err(io_err)?;
                let private = crate::protocol::ids::parse_hex::<KEY_BYTES>(text.trim())
                    .ok_or_else(|| IdentityError::Damaged(path.display().to_string()))?;
                Ok(Identity::from_private(private))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let mut private = [0u8; KEY_BYTES];
                getrandom::fill(&mut private).map_err(|err| io_err(io::Error::other(err.to_string())))?;
                write_private(&path, &private).map_err(io_err)?;
                log::info!("created a new identity in {}", path.display());
                Ok(Identity::from_private(private))
            }
            Err(err) => Err(io_err(err)),
        }
    }

    /// The identity with this private key (X25519 clamps it, as the Noise handshake does).
    pub fn from_private(private: [u8; KEY_BYTES]) -> Identity {
        let public = PublicKey::from_bytes(MontgomeryPoint::mul_base_clamped(private).to_bytes());
        Identity { private, public, signing: signing_key(&private) }
    }

    /// The private key, for the handshake only.
    pub(crate) fn private(&self) -> &[u8; KEY_BYTES] {
        &self.private
    }

    /// The public key: what peers pin.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The peer id derived from the public key.
    pub fn peer_id(&self) -> PeerId {
        self.public.peer_id()
    }
}

impl Signer for Identity {
    fn public(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        let (scalar, hash_prefix, verifying) = &self.signing;
        let secret = ExpandedSecretKey { scalar: *scalar, hash_prefix: *hash_prefix };
        raw_sign::<sha2::Sha512>(&secret, message, verifying).to_bytes()
    }
}

/// The X25519 private key as an Ed25519 one (XEdDSA): the same scalar `a`, negated when
/// `a·B` has sign bit 1, so that its public point is the one a verifier computes from the
/// X25519 public key alone (`to_edwards(0)`); nonces come from a key derived for them.
fn signing_key(private: &[u8; KEY_BYTES]) -> (Scalar, [u8; 32], ed25519_dalek::VerifyingKey) {
    let scalar = Scalar::from_bytes_mod_order(curve25519_dalek::scalar::clamp_integer(*private));
    let point = EdwardsPoint::mul_base(&scalar);
    let negative = point.compress().as_bytes().last().is_some_and(|byte| byte >> 7 == 1);
    let (scalar, point) = if negative { (-scalar, -point) } else { (scalar, point) };
    (scalar, blake3::derive_key(NONCE_KEY_CONTEXT, private), ed25519_dalek::VerifyingKey::from(point))
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half, not even in a debug log.
        write!(f, "Identity({})", self.public)
    }
}

/// Writes the key to a temporary file created owner-only, then renames it into place, so a
/// crash never leaves a half-written key behind.
fn write_private(path: &Path, private: &[u8; KEY_BYTES]) -> io::Result<()> {
    let temporary = path.with_extension("key.new");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file: File = options.open(&temporary)?;
    let hex = crate::protocol::ids::to_hex(private);
    file.write_all(format!("{hex}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

#[cfg(unix)]
fn tighten_mode(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        log::warn!("{} was readable by others (mode {:o}); setting it to 600", path.display(), mode & 0o777);
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_mode(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_kept_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path()).unwrap();
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public(), again.public());
        assert_eq!(first.peer_id(), first.public().peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_loose_mode_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        assert!(matches!(Identity::load_or_create(dir.path()), Err(IdentityError::Damaged(_))));
    }

    #[test]
    fn signatures_verify_with_the_x25519_key_alone_and_nothing_else() {
        for seed in 1..=32u8 {
            // Half of all keys have an Edwards point with sign bit 1: both halves are covered.
            let identity = Identity::from_private([seed; KEY_BYTES]);
            let signature = identity.sign(b"hello");
            assert!(identity.public().verifies(b"hello", &signature), "key {seed}");
            assert!(!identity.public().verifies(b"hellO", &signature));
            let other = Identity::from_private([seed.wrapping_add(100); KEY_BYTES]);
            assert!(!other.public().verifies(b"hello", &signature));
            let mut bent = signature;
            bent[seed as usize % 64] ^= 1;
            assert!(!identity.public().verifies(b"hello", &bent));
        }
    }

    #[test]
    fn public_key_matches_the_one_noise_computes() {
        let keypair =
            snow::Builder::new(super::super::NOISE_PARAMS.parse().unwrap()).generate_keypair().unwrap();
        let private: [u8; KEY_BYTES] = keypair.private.as_slice().try_into().unwrap();
        assert_eq!(Identity::from_private(private).public().as_bytes().as_slice(), keypair.public.as_slice());
    }
}
