//! The two wires a [`super::Conn`] can speak: kcp-go's (with one of its
//! ciphers, or none) and kcpx's secure wire (`docs/secure-wire.md`,
//! section 15): a session's [`Sender`] and [`Receiver`], sealing each
//! datagram the connection emits into one short datagram whose only frame
//! is KCP, opening what arrives, and keeping the control frames for the
//! connection's owner.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::crypt::PacketCrypt;
use crate::error::Error;
use crate::secure::frames::{self, Frame};
use crate::secure::wire::{ConnectionId, SHORT_HEADER_LEN, SHORT_OVERHEAD, TAG_LEN};
use crate::secure::{Receiver, Sender, Session};

/// Bytes in front of a secure datagram's kcp-go-form payload: the 13-byte
/// short header and the KCP frame's type byte.
pub const SECURE_PREFIX_LEN: usize = SHORT_HEADER_LEN + 1;

/// Bytes a secure datagram adds to its kcp-go-form payload (header, frame
/// byte, tag): 30.
pub(super) const OVERHEAD: usize = SHORT_OVERHEAD + 1;

/// Control frames waiting for [`super::Conn::poll_control`] at most;
/// beyond, the oldest are dropped (counted).
pub const CONTROL_QUEUE: usize = 16;

/// The KCP frame's type byte (`docs/secure-wire.md`, section 7).
const KCP_FRAME: u8 = 0x01;

/// A control frame of the secure wire, received or to send (PING, PONG,
/// CLOSE, PATH_CHALLENGE, PATH_RESPONSE; PADDING may be sent, never
/// queued; a KCP frame is neither): the connection's owner (the endpoint)
/// acts on it.
pub type Control = Frame<'static>;

/// The control frame of `frame` (owned), if it is one.
fn control(frame: Frame<'_>) -> Option<Control> {
    Some(match frame {
        Frame::Padding | Frame::Kcp(_) => return None,
        Frame::Ping(id) => Frame::Ping(id),
        Frame::Pong(id) => Frame::Pong(id),
        Frame::Close { reason, code } => Frame::Close { reason, code },
        Frame::PathChallenge(d) => Frame::PathChallenge(d),
        Frame::PathResponse(d) => Frame::PathResponse(d),
    })
}

/// The last datagram that opened (see [`super::Conn::last_opened`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedInfo {
    /// Its packet number.
    pub pn: u64,
    /// Whether it was the largest packet number seen so far.
    pub newest: bool,
}

/// What a secure connection counted beyond [`super::ConnStats`] (where a
/// datagram that did not open is also in `in_csum_errors`, a malformed or
/// misrouted one and a protocol error in `in_errs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecureStats {
    /// Datagrams that opened.
    pub opened: u64,
    /// Datagrams whose tag failed: forged, corrupted, or reflected back to
    /// their sender (the other direction's keys).
    pub forged: u64,
    /// Datagrams already seen or older than the replay window (not opened,
    /// nothing changed).
    pub replayed: u64,
    /// Datagrams with a bad short header, another connection ID or an
    /// impossible key phase.
    pub malformed: u64,
    /// Datagrams that opened but held an unknown or truncated frame (only
    /// the replay window moved).
    pub protocol_errors: u64,
    /// Control frames received.
    pub controls_in: u64,
    /// Control frames dropped from the full queue (the oldest first).
    pub controls_dropped: u64,
    /// Datagrams that could not be sealed (the packet numbers are
    /// exhausted): their bytes were zeroed, never sent in the clear; the
    /// session must end (CLOSE reason `KEYS`).
    pub seal_errors: u64,
}

/// A session's keys and what `Conn` keeps of the secure wire.
pub(super) struct SecureKeys {
    sender: Sender,
    receiver: Receiver,
    cid: ConnectionId,
    client_id: Option<u64>,
    control: VecDeque<Control>,
    last: Option<OpenedInfo>,
    protocol_errors: u64,
    controls_in: u64,
    controls_dropped: u64,
    seal_errors: u64,
}

impl SecureKeys {
    pub(super) fn new(session: Session) -> SecureKeys {
        SecureKeys {
            sender: session.sender,
            receiver: session.receiver,
            cid: session.cid,
            client_id: session.client_id,
            control: VecDeque::new(),
            last: None,
            protocol_errors: 0,
            controls_in: 0,
            controls_dropped: 0,
            seal_errors: 0,
        }
    }

    pub(super) fn cid(&self) -> ConnectionId {
        self.cid
    }

    pub(super) fn client_id(&self) -> Option<u64> {
        self.client_id
    }

    pub(super) fn stats(&self) -> SecureStats {
        let r = self.receiver.stats();
        SecureStats {
            opened: r.opened,
            forged: r.forged,
            replayed: r.replayed,
            malformed: r.malformed,
            protocol_errors: self.protocol_errors,
            controls_in: self.controls_in,
            controls_dropped: self.controls_dropped,
            seal_errors: self.seal_errors,
        }
    }

    pub(super) fn last_opened(&self) -> Option<OpenedInfo> {
        self.last
    }

    /// Frees the control queue's memory when it is empty.
    pub(super) fn shed(&mut self) {
        if self.control.is_empty() {
            self.control = VecDeque::new();
        }
    }

    pub(super) fn poll_control(&mut self) -> Option<Control> {
        self.control.pop_front()
    }

    /// Seals a datagram `[header space 13][frame byte][payload][tag space
    /// 16]` in place as a KCP frame. A datagram that cannot be sealed is
    /// zeroed: never sent in the clear.
    fn seal_kcp(&mut self, datagram: &mut [u8]) {
        datagram[SHORT_HEADER_LEN] = KCP_FRAME;
        if self.sender.seal(datagram).is_err() {
            datagram.fill(0);
            self.seal_errors += 1;
        }
    }

    /// Appends one sealed datagram holding `control` alone to `out`.
    pub(super) fn seal_control(&mut self, control: Control, out: &mut Vec<u8>) -> Result<(), Error> {
        if let Frame::Kcp(_) = control {
            return Err(Error::Invalid);
        }
        let frame = control;
        let at = out.len();
        out.resize(at + SHORT_HEADER_LEN + frame.len() + TAG_LEN, 0);
        let datagram = &mut out[at..];
        frame.encode(&mut datagram[SHORT_HEADER_LEN..])?;
        self.sender.seal(datagram)?;
        Ok(())
    }

    /// Opens a datagram in place: its KCP frame's bytes, if it has one,
    /// after its control frames were queued. A refusal is counted (by the
    /// receiver, or here for a protocol error) and changes nothing but, for
    /// a protocol error, the replay window.
    pub(super) fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Result<Option<&'a [u8]>, Error> {
        let opened = self.receiver.open(datagram)?;
        let plaintext: &'a [u8] = opened.frames;
        if frames::validate(plaintext).is_err() {
            self.protocol_errors += 1;
            return Err(Error::Short);
        }
        self.last = Some(OpenedInfo {
            pn: opened.pn,
            newest: opened.newest,
        });
        let mut kcp = None;
        for frame in frames::parse(plaintext).flatten() {
            if let Frame::Kcp(bytes) = frame {
                kcp = Some(bytes);
            } else if let Some(c) = control(frame) {
                self.controls_in += 1;
                if self.control.len() == CONTROL_QUEUE {
                    self.control.pop_front();
                    self.controls_dropped += 1;
                }
                self.control.push_back(c);
            }
        }
        Ok(kcp)
    }
}

/// The wire of a connection.
pub(super) enum Wire {
    /// kcp-go's format, with its cipher (`None`: no cipher).
    KcpGo(Option<Arc<PacketCrypt>>),
    /// kcpx's secure wire, with the session's keys (boxed: a kcp-go
    /// connection pays one pointer for it).
    Secure(Box<SecureKeys>),
}

impl Wire {
    /// Bytes in front of the kcp-go-form payload.
    pub(super) fn prefix_len(&self) -> usize {
        match self {
            Wire::KcpGo(c) => c.as_ref().map_or(0, |c| c.header_len()),
            Wire::Secure(_) => SECURE_PREFIX_LEN,
        }
    }

    /// Bytes after it: AES-GCM's or the secure wire's tag, else 0.
    pub(super) fn trailer_len(&self) -> usize {
        match self {
            Wire::KcpGo(c) => c.as_ref().map_or(0, |c| c.trailer_len()),
            Wire::Secure(_) => TAG_LEN,
        }
    }

    /// kcp-go's cipher, if this is kcp-go's wire with one.
    pub(super) fn kcpgo_crypt(&self) -> Option<&PacketCrypt> {
        match self {
            Wire::KcpGo(c) => c.as_deref(),
            Wire::Secure(_) => None,
        }
    }

    /// Seals the datagrams of `bytes` from `start` ending at `ends`, in place.
    pub(super) fn seal_packed(&mut self, bytes: &mut [u8], start: usize, ends: &[usize]) {
        match self {
            // All of a flush's datagrams at once: CFB is serial within a
            // datagram, so sealing several side by side is much faster.
            // Cannot fail: every datagram holds at least the header and
            // trailer bytes.
            Wire::KcpGo(Some(c)) => {
                let _ = c.seal_packed(bytes, start, ends);
            }
            Wire::KcpGo(None) => {}
            Wire::Secure(keys) => {
                let mut at = start;
                for &end in ends {
                    keys.seal_kcp(&mut bytes[at..end]);
                    at = end;
                }
            }
        }
    }

    /// Seals one datagram in place.
    pub(super) fn seal_one(&mut self, datagram: &mut [u8]) {
        match self {
            // Cannot fail: the datagram holds its header and trailer.
            Wire::KcpGo(Some(c)) => {
                let _ = c.seal(datagram);
            }
            Wire::KcpGo(None) => {}
            Wire::Secure(keys) => keys.seal_kcp(datagram),
        }
    }

    /// Heap bytes of the secure wire's state (the shared cipher not
    /// included).
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            Wire::KcpGo(_) => 0,
            Wire::Secure(keys) => {
                core::mem::size_of::<SecureKeys>() + keys.control.capacity() * core::mem::size_of::<Control>()
            }
        }
    }
}
