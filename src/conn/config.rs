//! [`ConnConfig`]: a connection's settings, validated here (the C setters
//! `kcpx_config_set_*` are one-line calls of these).

use super::rate::RateLimit;
use crate::crypt::CryptMethod;
use crate::error::Error;
use crate::fec::{FecConfig, FEC_DATA_OVERHEAD, KCPGO_MTU_LIMIT};

/// Bytes a connection keeps for KCP (header and payload) after its crypto
/// and FEC headers, at the least.
pub const MIN_KCP_BYTES: usize = 50;

/// Largest window the wire can carry (KCP's window field has 16 bits).
pub const MAX_WINDOW: u32 = 65535;

/// Settings of a connection. Both ends must agree on FEC and crypto.
/// The fields are public for reading and for struct-update syntax; every
/// constructor ([`crate::conn::Conn::new`], the session layer) runs
/// [`ConnConfig::validate`], and the setters validate as they go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// Reed-Solomon shards per group, `None` for no FEC header.
    pub fec: Option<FecConfig>,
    /// Cipher and key, `None` for no crypto header.
    pub crypt: Option<(CryptMethod, Vec<u8>)>,
    /// ikcp_nodelay's four settings: nodelay, interval (ms), fast resend,
    /// no congestion control.
    pub nodelay: (i32, i32, i32, i32),
    /// Send and receive windows, in segments (1..=65535).
    pub window: (u32, u32),
    /// Whole UDP payload, all headers included (kcp-go's meaning).
    pub mtu: u32,
    /// Stream mode (byte stream, no message boundaries).
    pub stream: bool,
    /// A cap on the bytes that leave (see [`RateLimit`]); `None`, the
    /// default, is none.
    pub rate_limit: Option<RateLimit>,
}

impl Default for ConnConfig {
    /// kcp-go's defaults: no FEC, no crypto, nodelay (0, 100, 0, 0), windows
    /// 32/32, MTU 1400, message mode.
    fn default() -> Self {
        ConnConfig {
            fec: None,
            crypt: None,
            nodelay: (0, 100, 0, 0),
            window: (32, 32),
            mtu: 1400,
            stream: false,
            rate_limit: None,
        }
    }
}

impl ConnConfig {
    /// FEC as kcp-go: `parity` parity datagrams after every `data` data
    /// datagrams; `(0, 0)` turns it off. [`Error::Fec`] unless each is >= 1
    /// and their sum <= 256.
    pub fn set_fec(&mut self, data: usize, parity: usize) -> Result<(), Error> {
        self.fec = match (data, parity) {
            (0, 0) => None,
            _ => Some(FecConfig::new(data, parity)?),
        };
        Ok(())
    }

    /// Packet encryption by kcp-go's cipher name (see
    /// [`CryptMethod::from_name`]) with a raw key; `None` for no crypto header.
    /// [`Error::Key`] for an unknown name or a key length the method does not
    /// take ([`CryptMethod::accepts_key_len`]).
    pub fn set_crypt(&mut self, method: Option<&str>, key: &[u8]) -> Result<(), Error> {
        let Some(name) = method else {
            self.crypt = None;
            return Ok(());
        };
        let m = CryptMethod::from_name(name).ok_or(Error::Key)?;
        check_key(m, key)?;
        self.crypt = Some((m, key.to_vec()));
        Ok(())
    }

    /// ikcp_nodelay's settings; a negative value keeps the current one.
    /// `interval` is clamped to 10..=5000 ms by the core, as in ikcp.c.
    pub fn set_nodelay(&mut self, nodelay: i32, interval: i32, resend: i32, nc: i32) {
        let keep = |new: i32, old: i32| if new >= 0 { new } else { old };
        let (n, i, r, x) = self.nodelay;
        self.nodelay = (keep(nodelay, n), keep(interval, i), keep(resend, r), keep(nc, x));
    }

    /// Send and receive windows in segments, each 1..=65535 (the wire's
    /// window field has 16 bits), else [`Error::Invalid`].
    pub fn set_window(&mut self, snd: u32, rcv: u32) -> Result<(), Error> {
        check_window(snd, rcv)?;
        self.window = (snd, rcv);
        Ok(())
    }

    /// The whole UDP payload in bytes, 50..=1500, else [`Error::Mtu`];
    /// [`ConnConfig::validate`] also needs room for KCP after the headers.
    pub fn set_mtu(&mut self, mtu: u32) -> Result<(), Error> {
        if !(MIN_KCP_BYTES as u32..=KCPGO_MTU_LIMIT as u32).contains(&mtu) {
            return Err(Error::Mtu);
        }
        self.mtu = mtu;
        Ok(())
    }

    /// Stream mode on or off.
    pub fn set_stream(&mut self, on: bool) {
        self.stream = on;
    }

    /// Caps what leaves at `bytes_per_sec` on average with bursts of
    /// `burst` bytes (0: 64 datagrams of the MTU), as kcp-go's
    /// `SetRateLimit`; 0 bytes per second is no cap. See [`RateLimit`].
    pub fn set_rate_limit(&mut self, bytes_per_sec: u32, burst: u32) {
        self.rate_limit = RateLimit::new(bytes_per_sec, burst);
    }

    /// Bytes in front of the KCP data: crypto header (20, AES-GCM's nonce
    /// 12), FEC header + size.
    pub fn header_len(&self) -> usize {
        let crypt = self.crypt.as_ref().map_or(0, |(m, _)| m.header_len());
        let fec = if self.fec.is_some() { FEC_DATA_OVERHEAD } else { 0 };
        crypt + fec
    }

    /// Bytes after the KCP data: AES-GCM's 16-byte tag, else 0.
    pub fn trailer_len(&self) -> usize {
        self.crypt.as_ref().map_or(0, |(m, _)| m.trailer_len())
    }

    /// Checks every setting (what a connection would refuse): the key
    /// against its cipher, the windows, and an MTU that leaves
    /// [`MIN_KCP_BYTES`] after the headers.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some((m, key)) = &self.crypt {
            check_key(*m, key)?;
        }
        check_window(self.window.0, self.window.1)?;
        let mtu = self.mtu as usize;
        if mtu > KCPGO_MTU_LIMIT || mtu < self.header_len() + self.trailer_len() + MIN_KCP_BYTES {
            return Err(Error::Mtu);
        }
        Ok(())
    }
}

fn check_key(m: CryptMethod, key: &[u8]) -> Result<(), Error> {
    if !m.accepts_key_len(key.len()) {
        return Err(Error::Key);
    }
    Ok(())
}

fn check_window(snd: u32, rcv: u32) -> Result<(), Error> {
    let ok = |w: u32| (1..=MAX_WINDOW).contains(&w);
    if ok(snd) && ok(rcv) {
        Ok(())
    } else {
        Err(Error::Invalid)
    }
}
