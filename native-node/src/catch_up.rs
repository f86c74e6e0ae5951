//! How the core task catches up after a stall (a slow disk, an overloaded machine, a short
//! SIGSTOP): the ticks it owes and the peer messages that arrived meanwhile.
//!
//! The owed ticks are all delivered at once, before any client request, so the core's clock
//! (election timer, check-quorum, lease) never lags real time (thesis §6.4.1). But the peer
//! messages already waiting go first: they were sent before the stall ended, and a leader that
//! ticked through a whole election timeout before reading its followers' answers would step
//! down (check-quorum, thesis §6.2) on a silence that was only its own. Stepping them first
//! stamps their contact with the older tick, which only errs towards stepping down.

/// The two things a catching-up core task does.
pub(crate) trait CatchUp {
    /// Steps the next peer message already queued; `false` when none is waiting.
    fn step_queued_peer_message(&mut self) -> bool;
    /// Delivers one tick to the core.
    fn tick(&mut self);
}

/// Delivers `owed` ticks. When more than one is owed the task was stalled: first the peer
/// messages that were queued when it woke (at most `queued`, so a peer that keeps sending
/// cannot hold the ticks back), then the ticks. No client request is handled in between.
pub(crate) fn deliver_owed_ticks(task: &mut impl CatchUp, owed: u64, queued: usize) {
    if owed > 1 {
        for _ in 0..queued {
            if !task.step_queued_peer_message() {
                break;
            }
        }
    }
    for _ in 0..owed {
        task.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what happened, in order: 'm' for a stepped message, 't' for a tick.
    struct Recorder {
        queued: usize,
        log: String,
    }

    impl CatchUp for Recorder {
        fn step_queued_peer_message(&mut self) -> bool {
            if self.queued == 0 {
                return false;
            }
            self.queued -= 1;
            self.log.push('m');
            true
        }
        fn tick(&mut self) {
            self.log.push('t');
        }
    }

    fn run(owed: u64, queued: usize, bound: usize) -> String {
        let mut task = Recorder { queued, log: String::new() };
        deliver_owed_ticks(&mut task, owed, bound);
        task.log
    }

    #[test]
    fn after_a_stall_queued_peer_messages_go_before_the_owed_ticks() {
        assert_eq!(run(5, 2, 2), "mmttttt");
    }

    #[test]
    fn a_single_tick_leaves_messages_to_the_select_loop() {
        assert_eq!(run(1, 2, 2), "t");
        assert_eq!(run(0, 2, 2), "");
    }

    #[test]
    fn only_the_messages_queued_at_wake_up_go_first() {
        // Three waiting but two counted at wake-up: a flood cannot hold the ticks back.
        assert_eq!(run(3, 3, 2), "mmttt");
        // Fewer waiting than counted: stop at the first empty try.
        assert_eq!(run(3, 1, 4), "mttt");
    }
}
