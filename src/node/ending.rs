//! Why a transfer ended, as one type: the node words it with [`Ending::reason`] (English; the
//! transfer's stored `reason`, what daemon clients and the command line show), and the window
//! reads that back with [`Ending::of`] to say it in its own language. Who ended it is part of
//! the wording, and a peer's reason that only repeats the word ("declined: declined") is
//! dropped.

/// How a transfer ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// Our user declined the offer.
    DeclinedHere,
    /// The other side declined, with its reason if it gave one.
    DeclinedThere(&'a str),
    /// Our user cancelled.
    CancelledHere,
    /// The other side cancelled, with its reason if it gave one.
    CancelledThere(&'a str),
    /// It failed at the other side, for this reason.
    FailedThere(&'a str),
    /// We refused an offer whose names were unsafe, for this reason.
    Refused(&'a str),
    /// Files posted to a room we (or they) no longer belong to.
    NoLongerMember,
    /// The device wants its PIN with an offer (none was given, or a wrong one).
    PinRefused,
    /// Pigeon stopped while it ran, and its family's transfers do not resume (IP Messenger,
    /// LocalSend): it has to be sent again.
    StoppedHere,
    /// Anything else: the reason as it is (a disk error, say), or nothing.
    Other(&'a str),
}

const DECLINED_HERE: &str = "declined";
const DECLINED_THERE: &str = "declined by the other side";
const CANCELLED_HERE: &str = "cancelled";
const CANCELLED_THERE: &str = "cancelled by the other side";
const FAILED_THERE: &str = "failed at the other end";
const REFUSED: &str = "refused an unsafe offer";
const NO_LONGER_MEMBER: &str = "no longer a member of the room";
const PIN_REFUSED: &str = "the device asks for its PIN";
const STOPPED_HERE: &str = "interrupted when Pigeon stopped; it has to be sent again";

/// How versions before this one worded a decline by the other side.
const OLD_DECLINED_THERE: &str = "declined";

/// A peer's reason, unless it says no more than the state does.
fn detail(reason: &str) -> &str {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.eq_ignore_ascii_case(DECLINED_HERE)
        || reason.eq_ignore_ascii_case(CANCELLED_HERE)
    {
        ""
    } else {
        reason
    }
}

impl<'a> Ending<'a> {
    /// The ending a peer's decline, cancel or failure (`state`) stands for, `reason` as it
    /// sent it.
    pub fn from_peer(state: crate::store::TransferState, reason: &'a str) -> Ending<'a> {
        use crate::store::TransferState;
        match state {
            TransferState::Declined => Ending::DeclinedThere(detail(reason)),
            TransferState::Failed => Ending::FailedThere(detail(reason)),
            _ => Ending::CancelledThere(detail(reason)),
        }
    }

    /// In English, as stored and shown by the command line.
    pub fn reason(&self) -> String {
        let with = |phrase: &str, detail: &str| {
            if detail.is_empty() { phrase.to_owned() } else { format!("{phrase}: {detail}") }
        };
        match *self {
            Ending::DeclinedHere => DECLINED_HERE.to_owned(),
            Ending::DeclinedThere(detail) => with(DECLINED_THERE, detail),
            Ending::CancelledHere => CANCELLED_HERE.to_owned(),
            Ending::CancelledThere(detail) => with(CANCELLED_THERE, detail),
            Ending::FailedThere(detail) => with(FAILED_THERE, detail),
            Ending::Refused(detail) => with(REFUSED, detail),
            Ending::NoLongerMember => NO_LONGER_MEMBER.to_owned(),
            Ending::PinRefused => PIN_REFUSED.to_owned(),
            Ending::StoppedHere => STOPPED_HERE.to_owned(),
            Ending::Other(reason) => reason.to_owned(),
        }
    }

    /// Reads a stored reason back (also as versions before this one worded it).
    pub fn of(reason: &'a str) -> Ending<'a> {
        let after = |prefix: &str| -> Option<&'a str> {
            let rest = reason.strip_prefix(prefix)?;
            if rest.is_empty() {
                return Some("");
            }
            rest.strip_prefix(": ").map(detail)
        };
        match reason {
            DECLINED_HERE => return Ending::DeclinedHere,
            CANCELLED_HERE => return Ending::CancelledHere,
            NO_LONGER_MEMBER => return Ending::NoLongerMember,
            PIN_REFUSED => return Ending::PinRefused,
            STOPPED_HERE => return Ending::StoppedHere,
            _ => {}
        }
        if let Some(detail) = after(DECLINED_THERE) {
            Ending::DeclinedThere(detail)
        } else if let Some(detail) = after(CANCELLED_THERE) {
            Ending::CancelledThere(detail)
        } else if let Some(detail) = after(FAILED_THERE) {
            Ending::FailedThere(detail)
        } else if let Some(detail) = after(REFUSED) {
            Ending::Refused(detail)
        } else if let Some(detail) = after(OLD_DECLINED_THERE) {
            Ending::DeclinedThere(detail)
        } else {
            Ending::Other(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TransferState;

    #[test]
    fn every_ending_reads_back_as_it_was_written_and_repeats_are_dropped() {
        let endings = [
            Ending::DeclinedHere,
            Ending::DeclinedThere(""),
            Ending::DeclinedThere("too big"),
            Ending::CancelledHere,
            Ending::CancelledThere(""),
            Ending::FailedThere("No space left on device (os error 28)"),
            Ending::Refused("a name leaves the folder: ../x"),
            Ending::NoLongerMember,
            Ending::PinRefused,
            Ending::StoppedHere,
            Ending::Other("cannot create a folder in /x: permission denied"),
            Ending::Other(""),
        ];
        for ending in endings {
            let reason = ending.reason();
            assert_eq!(Ending::of(&reason), ending, "{reason:?}");
        }
        assert_eq!(
            Ending::from_peer(TransferState::Declined, "declined").reason(),
            "declined by the other side"
        );
        assert_eq!(
            Ending::from_peer(TransferState::Cancelled, " Cancelled ").reason(),
            "cancelled by the other side"
        );
        // As earlier versions stored them.
        assert_eq!(Ending::of("declined: declined"), Ending::DeclinedThere(""));
        assert_eq!(Ending::of("cancelled by the other side: cancelled"), Ending::CancelledThere(""));
    }
}
