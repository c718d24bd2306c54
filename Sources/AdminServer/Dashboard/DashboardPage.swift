// The dashboard: one page, every asset inline (no CDN, nothing fetched but the guard's own
// API). It asks for the admin token (or takes it from the address's #token=…, which never
// reaches a server), keeps it for the browser tab only, and then shows: attempts and failures
// per minute as a chart, the figures and top attackers of the last hour and day, active bans
// with a button to lift each, alerts (weak credentials and compromised accounts stand out),
// and a live feed of AUTH attempts over server-sent events. Data is only ever put into the
// page as text, never as HTML.
//
// The page itself is Resources/dashboard.html (so that it can be edited and linted as HTML),
// embedded in the binary by SwiftPM (`.embedInCode`): nothing is read from disk at run time.

enum DashboardPage {
    static let html = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
}
