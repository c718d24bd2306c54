// Reading a configuration by the key table (with the closest key named for a typo) and
// rendering the defaults file and the reference table from it.

extension GuardConfiguration {
    /// Reads flattened values into a configuration starting from the defaults. Every problem is
    /// collected, with its key and line, so that one run of `config check` shows them all.
    public static func from(
        values: [(path: String, value: ConfigValue, line: Int?)], file: String, base: GuardConfiguration = GuardConfiguration()
    ) -> (GuardConfiguration, [ConfigurationIssue]) {
        var config = base
        var issues: [ConfigurationIssue] = []
        let table = Dictionary(Self.keys.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        var lines: [String: Int] = [:]
        for entry in values {
            lines[entry.path] = entry.line
            guard let key = table[entry.path] else {
                let hint = Self.closestKey(to: entry.path).map { " (did you mean \($0)?)" } ?? ""
                issues.append(ConfigurationIssue(file: file, line: entry.line, key: entry.path, message: "unknown key\(hint)"))
                continue
            }
            do {
                try key.apply(&config, entry.value)
            } catch let error as ConfigValueError {
                issues.append(ConfigurationIssue(file: file, line: entry.line, key: entry.path, message: error.message))
            } catch {
                issues.append(ConfigurationIssue(file: file, line: entry.line, key: entry.path, message: "\(error)"))
            }
        }
        if issues.isEmpty {
            for problem in config.crossKeyProblems() {
                issues.append(ConfigurationIssue(file: file, line: lines[problem.key], key: problem.key, message: problem.message))
            }
        }
        return (config, issues)
    }

    static func closestKey(to path: String) -> String? {
        var best: (String, Int)?
        for key in Self.keys {
            let distance = editDistance(Array(path), Array(key.path))
            if distance <= 3, best == nil || distance < best!.1 { best = (key.path, distance) }
        }
        return best?.0
    }

    // MARK: - Rendering

    /// The whole default configuration as YAML, every key with its help as a comment.
    public static func renderDefaults(_ config: GuardConfiguration = GuardConfiguration()) -> String {
        var out = "# SMTPGuard configuration: every key with its default value.\n"
        out += "# Durations: 500ms, 30s, 10m, 24h, 7d. Networks: 192.0.2.0/24, 2001:db8::/32.\n"
        out += "# A limit N means: the (N+1)th failure triggers the action.\n\n"
        var openSections: [String] = []
        for key in Self.keys {
            let parts = key.path.split(separator: ".").map(String.init)
            let sections = Array(parts.dropLast())
            var common = 0
            while common < min(sections.count, openSections.count) && sections[common] == openSections[common] { common += 1 }
            if (common < sections.count || common < openSections.count) && !out.hasSuffix("\n\n") { out += "\n" }
            for depth in common..<sections.count {
                out += String(repeating: "  ", count: depth) + sections[depth] + ":\n"
            }
            openSections = sections
            let indent = String(repeating: "  ", count: sections.count)
            for line in wrap(key.help, width: 88 - indent.count - 2) { out += indent + "# " + line + "\n" }
            out += indent + parts.last! + ": " + key.render(config) + "\n"
        }
        return out
    }

    /// The configuration reference as a Markdown table (for the README).
    public static func renderReference() -> String {
        let defaults = GuardConfiguration()
        var out = "| key | default | meaning |\n|---|---|---|\n"
        for key in Self.keys {
            var value = key.render(defaults)
            if key.path == "smtp.hostname" || key.path == "smtp.banner" { value = "\"\"" }
            out += "| `\(key.path)` | `\(value.replacing("|", with: "\\|"))` | \(key.help.replacing("|", with: "\\|")) |\n"
        }
        return out
    }
}

func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ") {
        if !current.isEmpty && current.count + 1 + word.count > width {
            lines.append(current)
            current = ""
        }
        current += current.isEmpty ? String(word) : " " + word
    }
    if !current.isEmpty { lines.append(current) }
    return lines
}

func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = previous
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
