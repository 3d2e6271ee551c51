@testable import Kafka
import Testing

/// The consumer's poll loop decisions, without librdkafka or a thread.
struct PollStateMachineTests {
    typealias Machine = KafkaConsumer.PollStateMachine

    @Test func pollsUntilTheSequenceSaysStopThenWaitsForDemand() {
        var machine = Machine(byteLimit: 1000)
        #expect(machine.step == .poll)
        machine.willYield(bytes: 10)
        machine.yielded(.produceMore)
        #expect(machine.step == .poll)
        machine.willYield(bytes: 10)
        machine.yielded(.stopProducing)
        #expect(machine.step == .wait)
        #expect(machine.demanded() == true)
        #expect(machine.step == .poll)
        // Demand that is not awaited wakes nobody.
        #expect(machine.demanded() == false)
    }

    /// The sequence may ask for more before the yield that said stop has returned: that demand
    /// must not be lost, or the poll thread would wait for ever.
    @Test func demandBetweenAYieldAndItsOutcomeIsKept() {
        var machine = Machine(byteLimit: 1000)
        machine.willYield(bytes: 10)
        #expect(machine.demanded() == false)
        machine.yielded(.stopProducing)
        #expect(machine.step == .poll)
        // The next yield starts afresh.
        machine.willYield(bytes: 10)
        machine.yielded(.stopProducing)
        #expect(machine.step == .wait)
    }

    @Test func pastTheByteLimitItWaitsUntilTheReaderTakesEnough() {
        var machine = Machine(byteLimit: 100)
        machine.willYield(bytes: 60)
        machine.yielded(.produceMore)
        #expect(machine.step == .poll)
        machine.willYield(bytes: 60)
        machine.yielded(.produceMore)
        #expect(machine.step == .wait)
        #expect(machine.bufferedBytes == 120)
        #expect(machine.taken(bytes: 10) == false)
        #expect(machine.step == .wait)
        #expect(machine.taken(bytes: 10) == true)
        #expect(machine.step == .poll)
        #expect(machine.bufferedBytes == 100)
    }

    @Test func demandThatArrivesOverTheByteLimitStillWaitsForBytes() {
        var machine = Machine(byteLimit: 100)
        machine.willYield(bytes: 150)
        machine.yielded(.stopProducing)
        #expect(machine.state == .waitingForDemand)
        #expect(machine.demanded() == false)
        #expect(machine.state == .waitingForBytes)
        #expect(machine.taken(bytes: 150) == true)
        #expect(machine.step == .poll)
    }

    @Test func stoppingEndsEveryWaitAndIsFinal() {
        for wait in [Machine.YieldOutcome.stopProducing, .produceMore] {
            var machine = Machine(byteLimit: 10)
            machine.willYield(bytes: 50)
            machine.yielded(wait)
            #expect(machine.step == .wait)
            #expect(machine.stop() == true)
            #expect(machine.step == .close)
            #expect(machine.demanded() == false)
            #expect(machine.taken(bytes: 50) == false)
            machine.yielded(.produceMore)
            #expect(machine.step == .close)
        }
        var polling = Machine(byteLimit: 10)
        #expect(polling.stop() == false)
        #expect(polling.step == .close)
    }

    @Test func aReaderThatWentAwayStopsThePolling() {
        var machine = Machine(byteLimit: 10)
        machine.willYield(bytes: 1)
        machine.yielded(.dropped)
        #expect(machine.step == .close)
    }

    @Test func bytesNeverGoNegative() {
        var machine = Machine(byteLimit: 10)
        _ = machine.taken(bytes: 5)
        #expect(machine.bufferedBytes == 0)
    }
}
