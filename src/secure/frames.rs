//! The frames inside a sealed datagram (`docs/secure-wire.md`, section 7).
//! Decoding borrows from the datagram and allocates nothing; an unknown
//! type or a truncated frame refuses the whole datagram.

use super::SecureError;

const PADDING: u8 = 0x00;
const KCP: u8 = 0x01;
const PING: u8 = 0x02;
const PONG: u8 = 0x03;
const CLOSE: u8 = 0x04;
const PATH_CHALLENGE: u8 = 0x05;
const PATH_RESPONSE: u8 = 0x06;

/// Why a session was closed, as a CLOSE frame carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The application closed; the code is its own.
    Application = 0,
    /// The idle timeout.
    Idle = 1,
    /// The dead-link time passed.
    DeadLink = 2,
    /// Evicted under pressure.
    Evicted = 3,
    /// The peer broke the protocol (also any reason v1 does not define).
    Protocol = 4,
    /// The listener is shutting down.
    Shutdown = 5,
    /// Packet numbers or the integrity limit are exhausted.
    Keys = 6,
}

impl CloseReason {
    /// The reason of a wire byte; unknown values read as `Protocol`.
    pub fn from_byte(b: u8) -> CloseReason {
        match b {
            0 => CloseReason::Application,
            1 => CloseReason::Idle,
            2 => CloseReason::DeadLink,
            3 => CloseReason::Evicted,
            5 => CloseReason::Shutdown,
            6 => CloseReason::Keys,
            _ => CloseReason::Protocol,
        }
    }
}

/// One frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One padding byte.
    Padding,
    /// A kcp-go-form payload (FEC shard or KCP segments): the rest of the
    /// datagram.
    Kcp(&'a [u8]),
    /// Asks for a PONG with this ID.
    Ping(u32),
    /// Answers the PING with this ID.
    Pong(u32),
    /// The sender closed.
    Close {
        /// Why.
        reason: CloseReason,
        /// The application's code (meaningful with `Application`).
        code: u32,
    },
    /// Asks for a PATH_RESPONSE with these bytes.
    PathChallenge([u8; 8]),
    /// Answers a PATH_CHALLENGE.
    PathResponse([u8; 8]),
}

impl Frame<'_> {
    /// Bytes it takes on the wire.
    pub fn len(&self) -> usize {
        match self {
            Frame::Padding => 1,
            Frame::Kcp(b) => 1 + b.len(),
            Frame::Ping(_) | Frame::Pong(_) => 5,
            Frame::Close { .. } => 6,
            Frame::PathChallenge(_) | Frame::PathResponse(_) => 9,
        }
    }

    /// Never empty (every frame has its type byte); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the frame at the start of `out` and returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, SecureError> {
        let n = self.len();
        let out = out.get_mut(..n).ok_or(SecureError::Truncated)?;
        match *self {
            Frame::Padding => out[0] = PADDING,
            Frame::Kcp(b) => {
                out[0] = KCP;
                out[1..].copy_from_slice(b);
            }
            Frame::Ping(id) | Frame::Pong(id) => {
                out[0] = if matches!(self, Frame::Ping(_)) { PING } else { PONG };
                out[1..5].copy_from_slice(&id.to_be_bytes());
            }
            Frame::Close { reason, code } => {
                out[0] = CLOSE;
                out[1] = reason as u8;
                out[2..6].copy_from_slice(&code.to_be_bytes());
            }
            Frame::PathChallenge(d) | Frame::PathResponse(d) => {
                out[0] = if matches!(self, Frame::PathChallenge(_)) {
                    PATH_CHALLENGE
                } else {
                    PATH_RESPONSE
                };
                out[1..9].copy_from_slice(&d);
            }
        }
        Ok(n)
    }
}

/// The frames of a datagram's plaintext, in order.
pub struct Frames<'a> {
    rest: &'a [u8],
}

/// Iterates over the frames of `plaintext`.
pub fn parse(plaintext: &[u8]) -> Frames<'_> {
    Frames { rest: plaintext }
}

/// Checks that all of `plaintext` is well-formed frames: a datagram is
/// taken whole or not at all.
pub fn validate(plaintext: &[u8]) -> Result<(), SecureError> {
    parse(plaintext).try_for_each(|f| f.map(|_| ()))
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, SecureError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&t, body) = self.rest.split_first()?;
        let fixed = |n: usize| body.get(..n).ok_or(SecureError::Truncated);
        let (frame, used) = match t {
            PADDING => (Ok(Frame::Padding), 0),
            KCP => (Ok(Frame::Kcp(body)), body.len()),
            PING | PONG => match fixed(4) {
                Ok(b) => {
                    let id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                    (Ok(if t == PING { Frame::Ping(id) } else { Frame::Pong(id) }), 4)
                }
                Err(e) => (Err(e), body.len()),
            },
            CLOSE => match fixed(5) {
                Ok(b) => (
                    Ok(Frame::Close {
                        reason: CloseReason::from_byte(b[0]),
                        code: u32::from_be_bytes([b[1], b[2], b[3], b[4]]),
                    }),
                    5,
                ),
                Err(e) => (Err(e), body.len()),
            },
            PATH_CHALLENGE | PATH_RESPONSE => match fixed(8) {
                Ok(b) => {
                    let mut d = [0u8; 8];
                    d.copy_from_slice(b);
                    (
                        Ok(if t == PATH_CHALLENGE {
                            Frame::PathChallenge(d)
                        } else {
                            Frame::PathResponse(d)
                        }),
                        8,
                    )
                }
                Err(e) => (Err(e), body.len()),
            },
            _ => (Err(SecureError::Malformed), body.len()),
        };
        self.rest = &body[used..];
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::Ping(7),
            Frame::Padding,
            Frame::Pong(u32::MAX),
            Frame::Close {
                reason: CloseReason::Application,
                code: 0xDEAD_BEEF,
            },
            Frame::PathChallenge([1, 2, 3, 4, 5, 6, 7, 8]),
            Frame::PathResponse([8; 8]),
            Frame::Kcp(b"kcp bytes"),
        ];
        let mut buf = [0u8; 64];
        let mut n = 0;
        for f in &frames {
            n += f.encode(&mut buf[n..]).unwrap();
        }
        assert_eq!(n, frames.iter().map(Frame::len).sum::<usize>());
        let back: Vec<Frame> = parse(&buf[..n]).map(Result::unwrap).collect();
        assert_eq!(back, frames);
        assert_eq!(validate(&buf[..n]), Ok(()));
        // A fixed frame cut anywhere is refused.
        for cut in 1..5 {
            assert_eq!(validate(&buf[..cut]), Err(SecureError::Truncated), "cut {cut}");
        }
        assert_eq!(validate(&[0x04, 1, 2]), Err(SecureError::Truncated));
        assert_eq!(validate(&[0x07]), Err(SecureError::Malformed));
        assert_eq!(validate(&[0x02, 0, 0, 0, 1, 0xFF]), Err(SecureError::Malformed));
        assert_eq!(Frame::Ping(1).encode(&mut [0u8; 4]), Err(SecureError::Truncated));
        assert_eq!(CloseReason::from_byte(200), CloseReason::Protocol);
    }
}
