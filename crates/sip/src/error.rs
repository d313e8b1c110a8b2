//! The crate's one error type, and the status line each parse failure earns.

use crate::transaction::TransactionId;

/// Everything that can go wrong in this crate.
///
/// Parse failures carry what a 400 (or 505, 513) needs: [`Error::status`] and
/// [`Error::reason`] give the status line, and [`crate::refusal`] copies the request's
/// Via, From, To, Call-ID and CSeq around it. The reason phrases are fixed ASCII text, so
/// nothing a peer sent is echoed into the status line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing but line breaks arrived.
    #[error("the message is empty")]
    Empty,
    /// The message (or, on a stream, the message being framed) is over the size limit.
    #[error("the message is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Bytes seen.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// No empty line ends the header section.
    #[error("no empty line ends the headers")]
    Unterminated,
    /// The start line or a header is not UTF-8.
    #[error("the message head is not UTF-8 (byte {offset})")]
    NotUtf8 {
        /// Offset of the first bad byte.
        offset: usize,
    },
    /// The first line is neither a Request-Line nor a Status-Line.
    #[error("the start line is malformed")]
    BadStartLine,
    /// The SIP version is not 2.0.
    #[error("SIP version `{0}` is not supported")]
    Version(String),
    /// A header line has no colon, or its name is not a token.
    #[error("a header line has no colon or an invalid name")]
    BadHeaderLine,
    /// One header (after unfolding) is over the length limit.
    #[error("the {name} header is {len} bytes, over the limit of {limit}")]
    HeaderTooLong {
        /// The header's name as received (cut to 64 characters).
        name: String,
        /// Its length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More header fields than the limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// A `%` not followed by two hex digits, an escape that does not decode to UTF-8, or a
    /// quoted-pair that escapes a non-ASCII character.
    #[error("bad escape in {field}")]
    BadEscape {
        /// Where: `Request-URI` or a header name.
        field: &'static str,
    },
    /// A field that does not follow its grammar.
    #[error("malformed {field}: {detail}")]
    Malformed {
        /// The header (or `Request-URI`, `status code`) that failed.
        field: &'static str,
        /// What was wrong, for the log.
        detail: &'static str,
    },
    /// A header every request and response must carry is absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that may appear once appears again.
    #[error("{0} appears more than once")]
    Duplicate(&'static str),
    /// The CSeq method differs from the Request-Line's method.
    #[error("CSeq method {cseq} does not match the request method {method}")]
    CSeqMismatch {
        /// The CSeq header's method.
        cseq: String,
        /// The Request-Line's method.
        method: String,
    },
    /// Content-Length promises more bytes than arrived (or, on a stream, differs from
    /// what arrived).
    #[error("Content-Length is {declared} but the body has {available} bytes")]
    ContentLength {
        /// The header's value.
        declared: usize,
        /// Bytes after the empty line.
        available: usize,
    },
    /// A request arrived in a dialog with a CSeq lower than one already seen.
    #[error("CSeq {got} is lower than {last}, already seen in the dialog")]
    CSeqOutOfOrder {
        /// The request's CSeq number.
        got: u32,
        /// The highest number seen from the peer.
        last: u32,
    },
    /// A session description line that does not follow RFC 8866.
    #[error("SDP line {line}: {detail}")]
    Sdp {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        detail: &'static str,
    },
    /// The offer has no audio stream we could use.
    #[error("the offer has no usable audio stream")]
    SdpNoAudio,
    /// The offer's audio stream has no codec we speak.
    #[error("no codec in common with the offer")]
    SdpNoCommonCodec,
    /// A request handed to the transaction layer has no Via branch.
    #[error("the request's top Via has no branch")]
    NoBranch,
    /// A client transaction with that branch and method exists already.
    #[error("a transaction with branch {0} exists already")]
    BranchInUse(String),
    /// ACK is sent without a transaction (RFC 3261 §17.1.1.3, §13.2.2.4).
    #[error("ACK is sent directly, not through a client transaction")]
    AckIsNotATransaction,
    /// The transaction is unknown, has ended, or has already sent its final response.
    #[error("{0} is unknown or has already sent its final response")]
    NoSuchTransaction(TransactionId),
    /// A response or request that cannot start a dialog.
    #[error("no dialog: {0}")]
    NotADialog(&'static str),
}

impl Error {
    /// The status code to answer a request that failed with this error.
    ///
    /// 505 for another SIP version and 513 for an oversized message, as RFC 3261 §21
    /// names them; 500 for an out-of-order CSeq (§12.2.2); 488 for an offer we cannot
    /// answer; 400 for everything else a peer can cause.
    pub fn status(&self) -> u16 {
        match self {
            Self::Version(_) => 505,
            Self::TooLarge { .. } => 513,
            Self::CSeqOutOfOrder { .. } => 500,
            Self::Sdp { .. } | Self::SdpNoAudio | Self::SdpNoCommonCodec => 488,
            Self::NoBranch
            | Self::BranchInUse(_)
            | Self::AckIsNotATransaction
            | Self::NoSuchTransaction(_)
            | Self::NotADialog(_) => 500,
            _ => 400,
        }
    }

    /// The reason phrase for the status line: fixed text naming what was wrong.
    pub fn reason(&self) -> String {
        match self {
            Self::Empty => "Empty Message".into(),
            Self::TooLarge { .. } => "Message Too Large".into(),
            Self::Unterminated => "Incomplete Message".into(),
            Self::NotUtf8 { .. } => "Invalid UTF-8".into(),
            Self::BadStartLine => "Malformed Start Line".into(),
            Self::Version(_) => "Version Not Supported".into(),
            Self::BadHeaderLine => "Malformed Header Line".into(),
            Self::HeaderTooLong { .. } => "Header Too Long".into(),
            Self::TooManyHeaders { .. } => "Too Many Headers".into(),
            Self::BadEscape { field } => format!("Bad Escape In {field}"),
            Self::Malformed { field, .. } => format!("Malformed {field}"),
            Self::Missing(name) => format!("Missing {name}"),
            Self::Duplicate(name) => format!("Duplicate {name}"),
            Self::CSeqMismatch { .. } => "CSeq Method Mismatch".into(),
            Self::ContentLength { .. } => "Content-Length Mismatch".into(),
            Self::CSeqOutOfOrder { .. } => "CSeq Out Of Order".into(),
            Self::Sdp { .. } => "Malformed SDP".into(),
            Self::SdpNoAudio | Self::SdpNoCommonCodec => "Not Acceptable Here".into(),
            Self::NoBranch
            | Self::BranchInUse(_)
            | Self::AckIsNotATransaction
            | Self::NoSuchTransaction(_)
            | Self::NotADialog(_) => "Server Internal Error".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_field_and_never_echo_peer_text() {
        let error = Error::Version("SIP/7.0\r\nX: y".into());
        assert_eq!(
            (error.status(), error.reason()),
            (505, "Version Not Supported".into())
        );
        let error = Error::BadEscape {
            field: "Request-URI",
        };
        assert_eq!(
            (error.status(), error.reason()),
            (400, "Bad Escape In Request-URI".into())
        );
        let error = Error::Missing("Call-ID");
        assert_eq!(error.reason(), "Missing Call-ID");
        assert_eq!(Error::TooLarge { len: 9, limit: 1 }.status(), 513);
    }
}
