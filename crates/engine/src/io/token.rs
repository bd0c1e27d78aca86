//! `user_data` for every SQE: which operation, on which connection, in
//! which incarnation of it. The generation makes a stale cancel unable to
//! hit a newer connection that reuses the slot.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Connect = 1,
    Send = 2,
    Recv = 3,
    Cancel = 4,
    Timer = 5,
    SockOpt = 6,
    /// A receive that discards body bytes unread (`MSG_TRUNC`).
    Skip = 7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub op: Op,
    pub gen: u32,
    pub conn: u32,
}

const GEN_MASK: u32 = 0x00ff_ffff;

impl Token {
    pub(crate) fn new(op: Op, conn: usize, gen: u32) -> Token {
        Token {
            op,
            gen: gen & GEN_MASK,
            conn: conn as u32,
        }
    }

    pub(crate) fn encode(self) -> u64 {
        ((self.op as u64) << 56) | (u64::from(self.gen & GEN_MASK) << 32) | u64::from(self.conn)
    }

    pub(crate) fn decode(v: u64) -> Option<Token> {
        let op = match v >> 56 {
            1 => Op::Connect,
            2 => Op::Send,
            3 => Op::Recv,
            4 => Op::Cancel,
            5 => Op::Timer,
            6 => Op::SockOpt,
            7 => Op::Skip,
            _ => return None,
        };
        Some(Token {
            op,
            gen: ((v >> 32) as u32) & GEN_MASK,
            conn: v as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for op in [
            Op::Connect,
            Op::Send,
            Op::Recv,
            Op::Cancel,
            Op::Timer,
            Op::SockOpt,
            Op::Skip,
        ] {
            let t = Token::new(op, 123_456, 0x1ff_ffff);
            assert_eq!(
                Token::decode(t.encode()),
                Some(Token {
                    op,
                    gen: 0xff_ffff,
                    conn: 123_456
                })
            );
        }
        assert_eq!(Token::decode(0), None);
    }
}
