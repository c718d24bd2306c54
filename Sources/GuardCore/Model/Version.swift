// The version `smtpguard --version` prints, the API reports and HTTP requests carry.

public enum SMTPGuardVersion {
    public static let current = "0.9.0"
}
