//! Randomness, injected by the host: WASI `random_get` under Envoy, `crypto.getRandomValues`
//! at the edge, the OS in native tests. The engine never falls back to anything weaker; a
//! failure of the source is a failure of the request (security.md A9).

use std::fmt;

/// The host's source of cryptographically secure random bytes.
pub trait Random {
    /// Fills `buf` with random bytes.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when the source fails; the engine then answers 503.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

/// The random source failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomError;

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("random source failed")
    }
}

/// The operating system's generator through `getrandom` (WASI `random_get` on
/// `wasm32-wasip1`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::getrandom(buf).map_err(|_| RandomError)
    }
}

/// Draws `n` random bytes.
pub(crate) fn bytes(rng: &mut dyn Random, n: usize) -> Result<Vec<u8>, RandomError> {
    let mut out = vec![0u8; n];
    rng.fill(&mut out)?;
    Ok(out)
}

/// 32 random bytes, base64url (43 characters): a flow id, a state, a nonce, a PKCE verifier.
pub(crate) fn token(rng: &mut dyn Random) -> Result<String, RandomError> {
    use base64::Engine;
    bytes(rng, 32).map(|b| crate::jose::B64URL.encode(b))
}

/// Adapts [`Random`] to `rand_core` for the RSA crate's blinding. `RngCore::fill_bytes`
/// cannot fail, so a failure is recorded and checked by the caller after the operation.
pub(crate) struct RngAdapter<'a> {
    inner: &'a mut dyn Random,
    failed: bool,
}

impl<'a> RngAdapter<'a> {
    pub(crate) fn new(inner: &'a mut dyn Random) -> Self {
        RngAdapter {
            inner,
            failed: false,
        }
    }

    /// Fills `buf`, recording a failure.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        if self.inner.fill(buf).is_err() {
            self.failed = true;
        }
    }

    /// Whether any draw failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }
}

impl rand_core::RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for RngAdapter<'_> {}
