import Foundation

/// `promtool check metrics` (Debian's prometheus package, which the set-up installs) on a
/// `/metrics` body: the problems it reports, empty when the exposition is clean.
public enum MetricsLint {
    public static func problems(_ exposition: String) async throws -> String {
        let directory = TestEnvironment.scratchDirectory("metrics-lint")
        let input = directory + "/\(UUID().uuidString).prom"
        let output = input + ".out"
        try exposition.write(toFile: input, atomically: true, encoding: .utf8)
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "promtool check metrics < '\(input)'"], outputPath: output)
        let status = await child.wait()
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return status == 0 ? "" : (text.isEmpty ? "promtool exited \(status)" : text)
    }
}
