// Reads a YAML configuration file into a GuardConfiguration through the key table of
// GuardCore. Every problem is reported with the file, the line and the key.

import Foundation
import GuardCore
import Yams

public enum ConfigurationLoader {
    public struct Failure: Error, CustomStringConvertible {
        public var issues: [ConfigurationIssue]
        public var description: String { self.issues.map(\.description).joined(separator: "\n") }
    }

    /// Loads a file; throws Failure with every problem found.
    public static func load(path: String, base: GuardConfiguration = GuardConfiguration()) throws -> GuardConfiguration {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw Failure(issues: [ConfigurationIssue(file: path, line: nil, key: "", message: "the file is not UTF-8 text")])
            }
            text = decoded
        } catch let failure as Failure {
            throw failure
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw Failure(issues: [ConfigurationIssue(file: path, line: nil, key: "", message: "cannot read the file: \(reason)")])
        }
        return try self.load(text: text, file: path, base: base)
    }

    public static func load(text: String, file: String, base: GuardConfiguration = GuardConfiguration()) throws -> GuardConfiguration {
        let (values, issues) = self.flatten(text: text, file: file)
        let (config, problems) = GuardConfiguration.from(values: values, file: file, base: base)
        let all = (issues + problems).sorted { ($0.line ?? 0) < ($1.line ?? 0) }
        guard all.isEmpty else { throw Failure(issues: all) }
        return config
    }

    /// The file as (dotted key, value, line) triples, or the problems that prevent that.
    static func flatten(text: String, file: String) -> ([(path: String, value: ConfigValue, line: Int?)], [ConfigurationIssue]) {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            return ([], [self.issue(from: error, file: file)])
        } catch {
            return ([], [ConfigurationIssue(file: file, line: nil, key: "", message: "not valid YAML: \(error)")])
        }
        guard let root else { return ([], []) }  // an empty file: all defaults
        guard case .mapping(let mapping) = root else {
            return ([], [ConfigurationIssue(file: file, line: root.mark?.line, key: "", message: "the top level must be a mapping of keys")])
        }
        var values: [(String, ConfigValue, Int?)] = []
        var issues: [ConfigurationIssue] = []
        var seen: Set<String> = []
        let sections = Set(GuardConfiguration.keys.flatMap { key -> [String] in
            let parts = key.path.split(separator: ".")
            return (1..<max(parts.count, 1)).map { parts.prefix($0).joined(separator: ".") }
        })
        let listKeys = Set(GuardConfiguration.keys.filter(\.isList).map(\.path))

        func walk(_ mapping: Node.Mapping, prefix: String) {
            for (keyNode, valueNode) in mapping {
                guard let name = keyNode.scalar?.string else {
                    issues.append(ConfigurationIssue(file: file, line: keyNode.mark?.line, key: prefix, message: "keys must be plain names"))
                    continue
                }
                let path = prefix.isEmpty ? name : prefix + "." + name
                let line = keyNode.mark?.line
                guard seen.insert(path).inserted else {
                    issues.append(ConfigurationIssue(file: file, line: line, key: path, message: "given twice"))
                    continue
                }
                switch valueNode {
                case .mapping(let inner):
                    if sections.contains(path) {
                        walk(inner, prefix: path)
                    } else {
                        issues.append(ConfigurationIssue(file: file, line: line, key: path, message: sectionHint(path, sections)))
                    }
                case .sequence(let sequence):
                    var items: [String] = []
                    for item in sequence {
                        guard let text = item.scalar?.string else {
                            issues.append(ConfigurationIssue(file: file, line: item.mark?.line ?? line, key: path, message: "list items must be single values"))
                            continue
                        }
                        items.append(text)
                    }
                    values.append((path, .list(items), line))
                case .scalar(let scalar):
                    if sections.contains(path) {
                        issues.append(ConfigurationIssue(file: file, line: line, key: path, message: "is a section: expected keys under it"))
                        continue
                    }
                    let isNull = scalar.tag == Tag(.null) || (scalar.style == .plain && ["", "~", "null"].contains(scalar.string))
                    if isNull {
                        values.append((path, listKeys.contains(path) ? .list([]) : .scalar(""), line))
                    } else {
                        values.append((path, .scalar(scalar.string), line))
                    }
                case .alias:
                    issues.append(ConfigurationIssue(file: file, line: line, key: path, message: "aliases are not supported"))
                }
            }
        }
        walk(mapping, prefix: "")
        return (values, issues)
    }

    private static func sectionHint(_ path: String, _ sections: Set<String>) -> String {
        "unknown section"
    }

    static func issue(from error: YamlError, file: String) -> ConfigurationIssue {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) " } ?? ""
            return ConfigurationIssue(file: file, line: mark.line, key: "", message: "not valid YAML: \(detail)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigurationIssue(
                file: file, line: context.mark.line, key: "",
                message: "key given twice in the mapping that starts here: \(duplicates.sorted().joined(separator: ", "))")
        case .reader(let problem, _, _, _):
            return ConfigurationIssue(file: file, line: nil, key: "", message: "not readable as YAML: \(problem)")
        default:
            return ConfigurationIssue(file: file, line: nil, key: "", message: "not valid YAML: \(error)")
        }
    }
}
