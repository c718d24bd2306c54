// crypt(3) through the system's libcrypt, with a work area of its own: crypt_r is safe to call
// from several threads at once when each has its own `crypt_data` (32 KiB on libxcrypt), so the
// audit gives each worker one CryptBuffer.

import CCrypt

final class CryptBuffer {
    private let data: UnsafeMutablePointer<crypt_data>

    init() {
        self.data = .allocate(capacity: 1)
        UnsafeMutableRawPointer(self.data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
    }

    deinit { self.data.deallocate() }

    /// The crypt(3) string of `phrase` with the salt and method of `setting` ($6$…, $2y$…, $y$…);
    /// nil when libcrypt does not know the method or the setting is malformed.
    func crypt(_ phrase: String, setting: String) -> String? {
        guard let result = crypt_r(phrase, setting, self.data) else { return nil }
        let hashed = String(cString: result)
        return hashed.hasPrefix("*") ? nil : hashed  // "*0" / "*1": libcrypt's failure tokens
    }
}
