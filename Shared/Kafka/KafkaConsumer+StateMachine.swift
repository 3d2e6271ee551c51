extension KafkaConsumer {
    /// The poll thread's decisions, apart from librdkafka and the thread so they can be tested
    /// alone: poll, wait (for the reader's demand, or for it to take bytes), or close. The
    /// reader's side (demand, bytes taken) and shutdown change it from other threads, under
    /// the lock of `ConsumerDemand`.
    struct PollStateMachine: Sendable, Equatable {
        enum State: Sendable, Equatable {
            case polling
            /// The sequence said stop producing; `produceMore` resumes.
            case waitingForDemand
            /// More than `byteLimit` bytes wait for the reader.
            case waitingForBytes
            case stopped
        }

        /// What the poll thread does next.
        enum Step: Sendable, Equatable {
            case poll
            case wait
            case close
        }

        /// What the sequence said to a yield.
        enum YieldOutcome: Sendable, Equatable {
            case produceMore
            case stopProducing
            case dropped
        }

        private(set) var state = State.polling
        /// Bytes handed to the reader and not yet taken.
        private(set) var bufferedBytes = 0
        /// Whether demand arrived between a yield and its outcome (the sequence may ask for more
        /// before the yield that said stop has returned).
        private var demandSinceYield = false
        let byteLimit: Int

        init(byteLimit: Int) {
            self.byteLimit = max(1, byteLimit)
        }

        var step: Step {
            switch state {
            case .polling: .poll
            case .waitingForDemand, .waitingForBytes: .wait
            case .stopped: .close
            }
        }

        /// Before a message is yielded.
        mutating func willYield(bytes: Int) {
            guard state != .stopped else { return }
            demandSinceYield = false
            bufferedBytes += bytes
        }

        /// The yield's outcome.
        mutating func yielded(_ outcome: YieldOutcome) {
            guard state == .polling else { return }
            switch outcome {
            case .dropped:
                state = .stopped
            case .stopProducing where !demandSinceYield:
                state = .waitingForDemand
            case .produceMore, .stopProducing:
                if bufferedBytes > byteLimit { state = .waitingForBytes }
            }
        }

        /// The reader wants more. Returns whether the poll thread must be woken.
        mutating func demanded() -> Bool {
            demandSinceYield = true
            guard state == .waitingForDemand else { return false }
            state = bufferedBytes > byteLimit ? .waitingForBytes : .polling
            return state == .polling
        }

        /// The reader took a message of `bytes`. Returns whether the poll thread must be woken.
        mutating func taken(bytes: Int) -> Bool {
            bufferedBytes = max(0, bufferedBytes - bytes)
            guard state == .waitingForBytes, bufferedBytes <= byteLimit else { return false }
            state = .polling
            return true
        }

        /// Shutdown, cancellation, or the reader went away. Returns whether the poll thread
        /// must be woken.
        mutating func stop() -> Bool {
            let wasWaiting = step == .wait
            state = .stopped
            return wasWaiting
        }
    }
}
