//! The handshake (`docs/secure-wire.md`, section 3), sans-IO: a
//! [`Client`] that sends CLIENT_HELLO, answers a CHALLENGE with
//! CLIENT_ECHO and checks SERVER_HELLO; a [`Server`] that answers hellos
//! with a cookie and keeps no state for a client until its echo carries a
//! valid one. Both take time and randomness as inputs.

use std::net::SocketAddr;

use x25519_dalek::{PublicKey, StaticSecret};

use super::aead::{AeadAlg, AeadSet};
use super::cookie::{CookieJar, COOKIE_LEN, COOKIE_WINDOW_MS};
use super::keys::{ct_eq, sha256, CredentialKeys, SessionSecrets, MAC_LEN, SECRET_LEN};
use super::packet::{Receiver, Sender};
use super::token::{credential_secret, OpenedToken, TokenBlob, TokenOpener, Use, UsedTable, SEALED_LEN};
use super::wire::{self, ConnectionId, MessageType, CID_LEN};
use super::{random, Entropy, SecureError};

/// Bytes of CLIENT_HELLO and CLIENT_ECHO.
pub const HELLO_LEN: usize = 1200;
/// Bytes of CHALLENGE.
pub const CHALLENGE_LEN: usize = 70;
/// Bytes of SERVER_HELLO.
pub const SERVER_HELLO_LEN: usize = 111;
/// The shortest PSK accepted.
pub const PSK_MIN: usize = 16;
/// The longest PSK accepted.
pub const PSK_MAX: usize = 64;
/// First retransmission of a handshake message.
pub const RETRANSMIT_MS: u64 = 250;
/// Longest delay between retransmissions.
pub const RETRANSMIT_MAX_MS: u64 = 2000;
/// A client gives up after this long.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Challenges a client answers after its first.
pub const MAX_RECHALLENGES: u8 = 3;
/// Default cap on a token's remaining life (`token_max_valid_s`).
pub const TOKEN_MAX_VALID_S: u64 = 3600;
/// Default size of the used-token and echo table.
pub const USED_CAPACITY: usize = 65_536;

const OFF_RANDOM: usize = 6;
const OFF_PUBLIC: usize = 38;
const OFF_OFFER: usize = 70;
const OFF_PREFERRED: usize = 71;
const OFF_KIND: usize = 72;
const OFF_TOKEN_LEN: usize = 73;
const OFF_TOKEN: usize = 75;
const OFF_COOKIE: usize = 1168;
const OFF_MAC: usize = 1184;
const KIND_PSK: u8 = 1;
const KIND_TOKEN: u8 = 2;
const TRANSCRIPT: &[u8] = b"kcpx1 transcript";

/// The fields of a hello or echo, checked for form only (no MAC).
struct Hello<'a> {
    random: [u8; 32],
    public: [u8; 32],
    offer: AeadSet,
    preferred: AeadAlg,
    kind: u8,
    token: &'a [u8],
    cookie: [u8; COOKIE_LEN],
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

fn parse_hello(d: &[u8]) -> Result<Hello<'_>, SecureError> {
    if d.len() != HELLO_LEN {
        return Err(SecureError::Truncated);
    }
    let offer = AeadSet::from_bits(d[OFF_OFFER]).ok_or(SecureError::Malformed)?;
    let preferred = AeadAlg::from_id(d[OFF_PREFERRED])
        .filter(|&a| offer.contains(a))
        .ok_or(SecureError::Malformed)?;
    let kind = d[OFF_KIND];
    let len = usize::from(u16::from_be_bytes([d[OFF_TOKEN_LEN], d[OFF_TOKEN_LEN + 1]]));
    match (kind, len) {
        (KIND_PSK, 0) | (KIND_TOKEN, SEALED_LEN) => {}
        _ => return Err(SecureError::Malformed),
    }
    if d[OFF_TOKEN + len..OFF_COOKIE].iter().any(|&b| b != 0) {
        return Err(SecureError::Malformed);
    }
    Ok(Hello {
        random: array(&d[OFF_RANDOM..]),
        public: array(&d[OFF_PUBLIC..]),
        offer,
        preferred,
        kind,
        token: &d[OFF_TOKEN..OFF_TOKEN + len],
        cookie: array(&d[OFF_COOKIE..]),
    })
}

/// `th`: the hash of the echo's fields and the server hello's.
fn transcript(echo: &[u8], server_hello: &[u8]) -> [u8; SECRET_LEN] {
    sha256(&[TRANSCRIPT, &echo[OFF_RANDOM..OFF_COOKIE], &server_hello[6..79]])
}

/// The X25519 shared secret; `Malformed` for a low-order public key (an
/// all-zero result).
fn agree(secret: &StaticSecret, public: &[u8; 32]) -> Result<[u8; 32], SecureError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(SecureError::Malformed);
    }
    Ok(*shared.as_bytes())
}

/// One established session's cryptographic state.
#[derive(Debug)]
pub struct Session {
    /// The connection ID the server chose.
    pub cid: ConnectionId,
    /// The AEAD in use.
    pub alg: AeadAlg,
    /// This side's sending direction.
    pub sender: Sender,
    /// This side's receiving direction.
    pub receiver: Receiver,
    /// The client's ID from its connect token (`None` with a PSK).
    pub client_id: Option<u64>,
}

/// What a client authenticates with.
#[derive(Clone)]
pub enum ClientCredential {
    /// A pre-shared key (16 to 64 bytes).
    Psk(Vec<u8>),
    /// A connect token's blob from the backend.
    Token(Box<TokenBlob>),
}

impl core::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ClientCredential::Psk(_) => f.write_str("Psk(..)"),
            ClientCredential::Token(t) => f.debug_tuple("Token").field(t).finish(),
        }
    }
}

/// A client's handshake settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The credential.
    pub credential: ClientCredential,
    /// The AEADs it allows.
    pub offer: AeadSet,
    /// The one it prefers (a member of `offer`).
    pub preferred: AeadAlg,
}

impl ClientConfig {
    /// A PSK client offering both AEADs and preferring this CPU's fastest.
    pub fn psk(key: &[u8]) -> Result<ClientConfig, SecureError> {
        if !(PSK_MIN..=PSK_MAX).contains(&key.len()) {
            return Err(SecureError::Invalid);
        }
        Ok(ClientConfig {
            credential: ClientCredential::Psk(key.to_vec()),
            offer: AeadSet::ALL,
            preferred: AeadAlg::for_this_cpu(),
        })
    }

    /// A token client (the backend's blob), likewise.
    pub fn token(blob: &[u8]) -> Result<ClientConfig, SecureError> {
        Ok(ClientConfig {
            credential: ClientCredential::Token(Box::new(TokenBlob::parse(blob)?)),
            offer: AeadSet::ALL,
            preferred: AeadAlg::for_this_cpu(),
        })
    }
}

/// Where a client's handshake is (`docs/secure-wire.md`, section 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientState {
    /// CLIENT_HELLO sent, waiting for a CHALLENGE.
    HelloSent,
    /// CLIENT_ECHO sent, waiting for SERVER_HELLO.
    EchoSent,
    /// Done: the session was handed out.
    Established,
    /// Gave up.
    Failed,
}

/// What a datagram did to a client.
#[derive(Debug)]
pub enum ClientProgress {
    /// Send [`Client::message`] (the echo) now.
    Send,
    /// Nothing to do (a duplicate challenge).
    Nothing,
    /// The handshake is done.
    Established(Box<Session>),
}

/// The client's handshake.
pub struct Client {
    state: ClientState,
    message: Box<[u8; HELLO_LEN]>,
    random: [u8; 32],
    scalar: Option<StaticSecret>,
    cs: Vec<u8>,
    keys: CredentialKeys,
    offer: AeadSet,
    client_id: Option<u64>,
    rechallenges: u8,
    started_ms: u64,
    next_send_ms: u64,
    delay_ms: u64,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts a handshake at `now_ms`: [`Client::message`] is the
    /// CLIENT_HELLO to send.
    pub fn new(cfg: &ClientConfig, now_ms: u64, entropy: &mut dyn Entropy) -> Result<Client, SecureError> {
        if !cfg.offer.contains(cfg.preferred) {
            return Err(SecureError::Invalid);
        }
        let (cs, token, client_id): (Vec<u8>, &[u8], _) = match &cfg.credential {
            ClientCredential::Psk(k) if (PSK_MIN..=PSK_MAX).contains(&k.len()) => (k.clone(), &[], None),
            ClientCredential::Psk(_) => return Err(SecureError::Invalid),
            ClientCredential::Token(t) => (
                credential_secret(&t.c2s_key, &t.s2c_key).to_vec(),
                &t.sealed[..],
                Some(t.client_id),
            ),
        };
        let random: [u8; 32] = random(entropy)?;
        let scalar = StaticSecret::from(super::random::<32>(entropy)?);
        let public = PublicKey::from(&scalar);
        let keys = CredentialKeys::new(&cs);
        let mut m = Box::new([0u8; HELLO_LEN]);
        wire::write_long(&mut m[..], MessageType::ClientHello);
        m[OFF_RANDOM..OFF_PUBLIC].copy_from_slice(&random);
        m[OFF_PUBLIC..OFF_OFFER].copy_from_slice(public.as_bytes());
        m[OFF_OFFER] = cfg.offer.bits();
        m[OFF_PREFERRED] = cfg.preferred.id();
        m[OFF_KIND] = if token.is_empty() { KIND_PSK } else { KIND_TOKEN };
        m[OFF_TOKEN_LEN..OFF_TOKEN].copy_from_slice(&(token.len() as u16).to_be_bytes());
        m[OFF_TOKEN..OFF_TOKEN + token.len()].copy_from_slice(token);
        let mac = keys.hello_mac(&m[..OFF_MAC]);
        m[OFF_MAC..].copy_from_slice(&mac);
        Ok(Client {
            state: ClientState::HelloSent,
            message: m,
            random,
            scalar: Some(scalar),
            cs,
            keys,
            offer: cfg.offer,
            client_id,
            rechallenges: 0,
            started_ms: now_ms,
            next_send_ms: now_ms + RETRANSMIT_MS,
            delay_ms: RETRANSMIT_MS,
        })
    }

    /// Where it is.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The message to send (and resend): CLIENT_HELLO, then CLIENT_ECHO.
    pub fn message(&self) -> &[u8] {
        &self.message[..]
    }

    /// When [`Client::handle_timeout`] wants to run; `None` once done.
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            ClientState::HelloSent | ClientState::EchoSent => {
                Some(self.next_send_ms.min(self.started_ms + HANDSHAKE_TIMEOUT_MS))
            }
            _ => None,
        }
    }

    /// At `now_ms`: `Ok(true)` to resend [`Client::message`], `Ok(false)`
    /// for nothing yet, `Failed` when the handshake timed out.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Result<bool, SecureError> {
        match self.state {
            ClientState::HelloSent | ClientState::EchoSent => {}
            ClientState::Failed => return Err(SecureError::Failed),
            ClientState::Established => return Ok(false),
        }
        if now_ms >= self.started_ms + HANDSHAKE_TIMEOUT_MS {
            self.fail();
            return Err(SecureError::Failed);
        }
        if now_ms < self.next_send_ms {
            return Ok(false);
        }
        self.delay_ms = (self.delay_ms * 2).min(RETRANSMIT_MAX_MS);
        self.next_send_ms = now_ms + self.delay_ms;
        Ok(true)
    }

    fn fail(&mut self) {
        self.state = ClientState::Failed;
        self.scalar = None;
    }

    /// Takes a datagram from the server. A refusal leaves the state as it
    /// was (except `Failed`, after too many challenges).
    pub fn handle(&mut self, d: &[u8], now_ms: u64) -> Result<ClientProgress, SecureError> {
        match (wire::parse_long(d)?, self.state) {
            (MessageType::Challenge, ClientState::HelloSent | ClientState::EchoSent) => self.on_challenge(d, now_ms),
            (MessageType::ServerHello, ClientState::EchoSent) => self.on_server_hello(d),
            _ => Err(SecureError::Unexpected),
        }
    }

    fn on_challenge(&mut self, d: &[u8], now_ms: u64) -> Result<ClientProgress, SecureError> {
        if d[OFF_RANDOM..OFF_RANDOM + 32] != self.random {
            return Err(SecureError::Unexpected);
        }
        if !ct_eq(&self.keys.challenge_mac(&d[..54]), &d[54..70]) {
            return Err(SecureError::Forged);
        }
        let cookie = &d[38..54];
        if self.state == ClientState::EchoSent {
            if self.message[OFF_COOKIE..OFF_MAC] == *cookie {
                return Ok(ClientProgress::Nothing);
            }
            if self.rechallenges >= MAX_RECHALLENGES {
                self.fail();
                return Err(SecureError::Failed);
            }
            self.rechallenges += 1;
        }
        wire::write_long(&mut self.message[..], MessageType::ClientEcho);
        self.message[OFF_COOKIE..OFF_MAC].copy_from_slice(cookie);
        let mac = self.keys.hello_mac(&self.message[..OFF_MAC]);
        self.message[OFF_MAC..].copy_from_slice(&mac);
        self.state = ClientState::EchoSent;
        self.delay_ms = RETRANSMIT_MS;
        self.next_send_ms = now_ms + RETRANSMIT_MS;
        Ok(ClientProgress::Send)
    }

    fn on_server_hello(&mut self, d: &[u8]) -> Result<ClientProgress, SecureError> {
        let cid: ConnectionId = array(&d[6..6 + CID_LEN]);
        let server_public: [u8; 32] = array(&d[46..78]);
        let alg = AeadAlg::from_id(d[78])
            .filter(|&a| self.offer.contains(a))
            .ok_or(SecureError::Malformed)?;
        let scalar = self.scalar.as_ref().ok_or(SecureError::Unexpected)?;
        let dh = agree(scalar, &server_public)?;
        let th = transcript(&self.message[..], d);
        let secrets = SessionSecrets::derive(&th, &self.cs, &dh);
        if !ct_eq(&secrets.confirmation(&th), &d[79..111]) {
            return Err(SecureError::Forged);
        }
        self.state = ClientState::Established;
        self.scalar = None; // forward secrecy: the ephemeral scalar goes now
        Ok(ClientProgress::Established(Box::new(Session {
            cid,
            alg,
            sender: Sender::new(alg, cid, secrets.c2s),
            receiver: Receiver::new(alg, cid, secrets.s2c),
            client_id: self.client_id,
        })))
    }
}

/// A server's handshake settings (its `Debug` hides the keys).
#[derive(Clone)]
pub struct ServerConfig {
    psk: Option<Vec<u8>>,
    token_key: Option<[u8; 32]>,
    /// The AEADs it allows.
    pub allowed: AeadSet,
    /// Cap on a token's remaining life, seconds.
    pub token_max_valid_s: u64,
    /// Entries of the used-token and echo table.
    pub used_capacity: usize,
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("psk", &self.psk.is_some())
            .field("token_key", &self.token_key.is_some())
            .field("allowed", &self.allowed)
            .field("token_max_valid_s", &self.token_max_valid_s)
            .field("used_capacity", &self.used_capacity)
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            psk: None,
            token_key: None,
            allowed: AeadSet::ALL,
            token_max_valid_s: TOKEN_MAX_VALID_S,
            used_capacity: USED_CAPACITY,
        }
    }
}

impl ServerConfig {
    /// Accepts clients with this pre-shared key (16 to 64 bytes).
    pub fn set_psk(&mut self, key: &[u8]) -> Result<(), SecureError> {
        if !(PSK_MIN..=PSK_MAX).contains(&key.len()) {
            return Err(SecureError::Invalid);
        }
        self.psk = Some(key.to_vec());
        Ok(())
    }

    /// Accepts connect tokens sealed with this 32-byte key.
    pub fn set_token_key(&mut self, key: &[u8]) -> Result<(), SecureError> {
        self.token_key = Some(key.try_into().map_err(|_| SecureError::Invalid)?);
        Ok(())
    }
}

/// The time a server needs: monotonic milliseconds (cookie windows) and
/// Unix seconds (token expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub ms: u64,
    /// Wall-clock Unix seconds.
    pub unix_s: u64,
}

/// What a server does with a handshake datagram.
#[derive(Debug)]
pub enum ServerAction {
    /// Send this CHALLENGE to the source.
    Challenge([u8; CHALLENGE_LEN]),
    /// A new session: send its SERVER_HELLO to the source.
    Accept(Box<Accepted>),
    /// A repeated echo: resend the SERVER_HELLO of the pending session
    /// whose client random this is, if there is one.
    Duplicate([u8; 32]),
}

/// A session the server accepted from an echo.
#[derive(Debug)]
pub struct Accepted {
    /// Its keys and connection ID.
    pub session: Session,
    /// The SERVER_HELLO to send (and resend for a duplicate echo).
    pub server_hello: [u8; SERVER_HELLO_LEN],
    /// The client's random, to match duplicates with.
    pub client_random: [u8; 32],
}

/// What a server counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Challenges sent.
    pub challenges: u64,
    /// Sessions accepted.
    pub accepted: u64,
    /// Duplicate echoes.
    pub duplicates: u64,
    /// Datagrams refused, for any reason.
    pub refused: u64,
    /// Of those: forged (MAC, cookie, token seal).
    pub forged: u64,
    /// Of those: expired cookies or tokens.
    pub expired: u64,
    /// Of those: replayed tokens.
    pub token_reused: u64,
    /// Of those: reflected or misdirected messages.
    pub unexpected: u64,
}

/// The server's stateless handshake: credentials, the cookie jar and the
/// used-token table; no per-client state before an echo.
pub struct Server {
    psk: Option<(Vec<u8>, CredentialKeys)>,
    tokens: Option<TokenOpener>,
    allowed: AeadSet,
    token_max_valid_s: u64,
    jar: CookieJar,
    used: UsedTable,
    stats: ServerStats,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server for `cfg`; `Unsupported` when it has no credential.
    pub fn new(cfg: &ServerConfig) -> Result<Server, SecureError> {
        if cfg.psk.is_none() && cfg.token_key.is_none() {
            return Err(SecureError::Unsupported);
        }
        Ok(Server {
            psk: cfg.psk.as_ref().map(|k| (k.clone(), CredentialKeys::new(k))),
            tokens: cfg.token_key.as_ref().map(|k| TokenOpener::new(k)).transpose()?,
            allowed: cfg.allowed,
            token_max_valid_s: cfg.token_max_valid_s,
            jar: CookieJar::new(),
            used: UsedTable::new(cfg.used_capacity),
            stats: ServerStats::default(),
        })
    }

    /// What it counted.
    pub fn stats(&self) -> ServerStats {
        self.stats
    }

    /// Entries in the used-token and echo table.
    pub fn used_entries(&self) -> usize {
        self.used.len()
    }

    /// Takes a long-header datagram from `from`, received at `local` (the
    /// address tokens must name). `cid_taken` says whether a connection ID
    /// is in use (a new session's is redrawn until it is not). Every refusal
    /// is counted in [`Server::stats`].
    pub fn handle(
        &mut self,
        d: &[u8],
        from: SocketAddr,
        local: SocketAddr,
        now: Now,
        entropy: &mut dyn Entropy,
        cid_taken: &dyn Fn(&ConnectionId) -> bool,
    ) -> Result<ServerAction, SecureError> {
        let r = self.handle_inner(d, from, local, now, entropy, cid_taken);
        match &r {
            Ok(ServerAction::Challenge(_)) => self.stats.challenges += 1,
            Ok(ServerAction::Accept(_)) => self.stats.accepted += 1,
            Ok(ServerAction::Duplicate(_)) => self.stats.duplicates += 1,
            Err(e) => {
                self.stats.refused += 1;
                match e {
                    SecureError::Forged => self.stats.forged += 1,
                    SecureError::Expired => self.stats.expired += 1,
                    SecureError::TokenReused => self.stats.token_reused += 1,
                    SecureError::Unexpected => self.stats.unexpected += 1,
                    _ => {}
                }
            }
        }
        r
    }

    fn handle_inner(
        &mut self,
        d: &[u8],
        from: SocketAddr,
        local: SocketAddr,
        now: Now,
        entropy: &mut dyn Entropy,
        cid_taken: &dyn Fn(&ConnectionId) -> bool,
    ) -> Result<ServerAction, SecureError> {
        let t = wire::parse_long(d)?;
        if !matches!(t, MessageType::ClientHello | MessageType::ClientEcho) {
            return Err(SecureError::Unexpected); // reflected
        }
        let h = parse_hello(d)?;
        self.jar.rotate(now.ms, entropy)?;
        if t == MessageType::ClientEcho {
            // The cheapest check that stops spoofed addresses runs first.
            self.jar.check(now.ms, &h.cookie, from, &h.random, &h.public)?;
        } else if h.cookie != [0; COOKIE_LEN] {
            return Err(SecureError::Malformed);
        }
        let token: Option<OpenedToken> = match h.kind {
            KIND_TOKEN => {
                let opener = self.tokens.as_ref().ok_or(SecureError::Unsupported)?;
                Some(opener.open(h.token, now.unix_s, self.token_max_valid_s, local)?)
            }
            _ => {
                if self.psk.is_none() {
                    return Err(SecureError::Unsupported);
                }
                None
            }
        };
        let token_keys;
        let (cs, keys): (&[u8], &CredentialKeys) = match &token {
            Some(t) => {
                let cs = credential_secret(&t.c2s_key, &t.s2c_key);
                token_keys = (cs, CredentialKeys::new(&cs));
                (&token_keys.0[..], &token_keys.1)
            }
            None => {
                let (k, keys) = self.psk.as_ref().expect("checked above");
                (&k[..], keys)
            }
        };
        if !ct_eq(&keys.hello_mac(&d[..OFF_MAC]), &d[OFF_MAC..]) {
            return Err(SecureError::Forged);
        }
        let alg = AeadSet::choose(self.allowed, h.offer, h.preferred).ok_or(SecureError::Unsupported)?;

        if t == MessageType::ClientHello {
            let mut out = [0u8; CHALLENGE_LEN];
            let cookie = self.jar.make(now.ms, from, &h.random, &h.public, entropy)?;
            wire::write_long(&mut out, MessageType::Challenge);
            out[6..38].copy_from_slice(&h.random);
            out[38..54].copy_from_slice(&cookie);
            let mac = keys.challenge_mac(&out[..54]);
            out[54..70].copy_from_slice(&mac);
            return Ok(ServerAction::Challenge(out));
        }

        // The echo: an address proven, a credential checked. Deduplicate
        // before any X25519 work.
        let (key, expires, fingerprint) = match &token {
            Some(t) => (t.tag, t.expires, array(&h.random[..8])),
            None => (
                array(&h.random[..16]),
                now.unix_s + 2 * COOKIE_WINDOW_MS / 1000,
                array(&h.random[16..24]),
            ),
        };
        if self.used.record(key, expires, fingerprint, now.unix_s)? == Use::Duplicate {
            return Ok(ServerAction::Duplicate(h.random));
        }
        let scalar = StaticSecret::from(random::<32>(entropy)?);
        let dh = agree(&scalar, &h.public)?;
        let server_random: [u8; 32] = random(entropy)?;
        let mut cid: ConnectionId = random(entropy)?;
        while cid_taken(&cid) {
            cid = random(entropy)?;
        }
        let mut sh = [0u8; SERVER_HELLO_LEN];
        wire::write_long(&mut sh, MessageType::ServerHello);
        sh[6..14].copy_from_slice(&cid);
        sh[14..46].copy_from_slice(&server_random);
        sh[46..78].copy_from_slice(PublicKey::from(&scalar).as_bytes());
        sh[78] = alg.id();
        let th = transcript(d, &sh);
        let secrets = SessionSecrets::derive(&th, cs, &dh);
        sh[79..].copy_from_slice(&secrets.confirmation(&th));
        Ok(ServerAction::Accept(Box::new(Accepted {
            session: Session {
                cid,
                alg,
                sender: Sender::new(alg, cid, secrets.s2c),
                receiver: Receiver::new(alg, cid, secrets.c2s),
                client_id: token.map(|t| t.client_id),
            },
            server_hello: sh,
            client_random: h.random,
        })))
    }
}

// MAC_LEN is the truncation of the hello and challenge MACs.
const _: () = assert!(OFF_MAC + MAC_LEN == HELLO_LEN && 54 + MAC_LEN == CHALLENGE_LEN);
