#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium (Debian's chromium) driven over the
DevTools protocol, against a running guard in front of the lab's Postfix + Dovecot.

  1. A scripted attack through the guard (smtplib from many loopback addresses): a user who
     logs in, two guessers who end up banned, admin/admin accepted by the backend (a
     critical alert), and a username banned through the API.
  2. The page: without a token it asks for one; a wrong token is refused; the right one
     opens it. Every figure, top list, ban and alert it shows is compared with what the API
     answers, and its live feed with the API's events.
  3. Live: a third guesser attacks while the page is open; the page shows the attempts and
     the new ban without a reload, and its figures catch up with the API.
  4. A ban is lifted by clicking its Lift button: the row goes, the API no longer has the
     ban, the feed shows the unban and the address is let in again.
  5. Nothing on the page throws, breaks its Content-Security-Policy or asks anything of a
     server other than the guard. A screenshot of the whole page is saved.

Prints one PASS / FAIL line per check and "N passed, N failed"; exit status 1 when a check
failed. Only standard-library Python; Chromium is spoken to over --remote-debugging-pipe
(NUL-separated JSON on file descriptors 3 and 4), so no WebSocket client is needed.

  dashboard.py --guard HOST:PORT --admin HOST:PORT --token-file FILE --screenshot FILE
"""
import argparse
import base64
import json
import os
import select
import smtplib
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, profile, width, height, log):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def descriptors():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.process = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "--no-first-run",
             "--no-default-browser-check", "--disable-background-networking", "--disable-sync",
             "--disable-component-update", "--disable-extensions", "--mute-audio",
             f"--window-size={width},{height}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=descriptors,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        request = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            request["sessionId"] = self.session
        data = json.dumps(request).encode() + b"\0"
        while data:
            data = data[os.write(self.to_chrome, data):]
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}…: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait(self, expression, seconds):
        """True once the expression is truthy in the page, polled every 100 ms."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.evaluate(expression):
                    return True
            except RuntimeError:
                pass
            time.sleep(0.1)
        return False

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})

    def click(self, selector):
        """A real mouse click (pressed and released) in the middle of the element."""
        # Only when the element is what a person sees at that point: not clipped, not covered.
        box = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center", inline: "center"}});
            const r = e.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
            const top = document.elementFromPoint(x, y);
            return top && (top === e || e.contains(top)) ? [x, y] : null; }})()""")
        if box is None:
            return False
        x, y = box
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
        return True

    def type_into(self, selector, text):
        self.click(selector)
        self.call("Input.insertText", {"text": text})

    def screenshot(self, path):
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def drain(self):
        """Reads the events Chromium has sent since the last call."""
        try:
            self.call("Runtime.evaluate", {"expression": "0"})
        except Exception:
            pass
        return self.events


class Guard:
    """The guard under test: SMTP through it (as the attackers and users), its admin API."""

    def __init__(self, smtp, admin, token):
        host, port = smtp.rsplit(":", 1)
        self.smtp_host, self.smtp_port = host, int(port)
        self.admin = f"http://{admin}"
        self.token = token

    def api(self, method, path, body=None):
        request = urllib.request.Request(
            self.admin + path, method=method, headers={"Authorization": f"Bearer {self.token}"},
            data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def _connect(self, source):
        """A connection from SOURCE and the code of its greeting: (client, 220), or (None, the
        code that turned it away; 421 for a close without a word)."""
        try:
            return smtplib.SMTP(self.smtp_host, self.smtp_port, local_hostname="client.test",
                                source_address=(source, 0), timeout=30), 220
        except smtplib.SMTPConnectError as error:
            return None, error.smtp_code
        except smtplib.SMTPServerDisconnected:
            return None, 421

    @staticmethod
    def _close(client):
        try:
            client.quit()  # a guard that has just banned the client answers 421: fine
        except (smtplib.SMTPException, OSError):
            client.close()

    def login(self, source, username, password):
        """One connection from SOURCE: STARTTLS, AUTH PLAIN. Returns the SMTP code that ended it
        (235 accepted, 535 refused, 554 turned away at connect, 421 closed by the guard …)."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        client, code = self._connect(source)
        if client is None:
            return code
        try:
            client.starttls(context=context)
            client.ehlo("client.test")
            # One mechanism, one attempt: smtplib's login() would try each one offered.
            client.user, client.password = username, password
            client.auth("PLAIN", client.auth_plain)
            return 235
        except smtplib.SMTPResponseException as error:
            return error.smtp_code
        except smtplib.SMTPServerDisconnected:
            return 421
        finally:
            self._close(client)

    def greeting(self, source):
        """The code of the greeting a client at SOURCE gets."""
        client, code = self._connect(source)
        if client is not None:
            self._close(client)
        return code

    def guess_until_banned(self, source, username, most=10):
        """Wrong passwords from SOURCE until the guard turns it away (at most MOST tries)."""
        for i in range(most):
            if self.login(source, username, f"guess-{i}-Spring2026") == 554:
                return i
        return None


def page_state(browser):
    """What the page shows, read from its elements."""
    return browser.evaluate(r"""(() => {
      const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : null; };
      const rows = (id) => [...document.querySelectorAll("#" + id + " tbody tr")]
        .filter((r) => !r.querySelector("td.empty"))
        .map((r) => [...r.children].map((c) => c.textContent));
      const figures = {};
      for (const label of ["attempts", "failures", "refused", "successes", "bans-issued", "alerts"])
        figures[label] = [text("fig-1h-" + label), text("fig-24h-" + label)];
      return {
        figures, banCount: text("ban-count"), conn: text("conn"),
        bans: [...document.querySelectorAll("#bans tbody tr[data-key]")].map((r) => [r.dataset.scope, r.dataset.key, r.children[2].textContent]),
        alerts: [...document.querySelectorAll("#alerts tbody tr")].filter((r) => !r.querySelector("td.empty")).map((r) => [r.children[1].textContent, r.className]),
        topIPs: rows("top-ips"), topPrefixes: rows("top-prefixes"), topUsernames: rows("top-usernames"),
        feedIDs: [...document.querySelectorAll("#feed tbody tr[data-id]")].map((r) => Number(r.dataset.id)),
        feed: [...document.querySelectorAll("#feed tbody tr[data-id]")].map((r) => [...r.children].map((c) => c.textContent)),
        timeline: state.timeline.length,
        timelineAttempts: state.timeline.reduce((n, p) => n + p.attempts, 0),
      };
    })()""")


def api_view(guard):
    """The same things, as the API answers them."""
    stats = guard.api("GET", "/api/stats?period=1h,24h&top=10&timeline=180")
    hour, day = stats["periods"]
    names = {"attempts": "attempts", "failures": "failures", "refused": "refused",
             "successes": "successes", "bans-issued": "bans", "alerts": "alerts"}
    figures = {label: [str(hour[key]), str(day[key])] for label, key in names.items()}
    bans = guard.api("GET", "/api/bans?limit=500")
    top = lambda items: [[t["key"], str(t["failures"])] for t in items]
    return {
        "figures": figures, "banCount": str(bans["total"]),
        "bans": [[b["scope"], b["key"], b["reason"]] for b in bans["bans"]],
        "alerts": [[a["kind"], "alert-" + a["severity"]] for a in guard.api("GET", "/api/alerts?limit=50")["alerts"]],
        "topIPs": top(hour["top_ips"]), "topPrefixes": top(hour["top_prefixes"]),
        "topUsernames": top(hour["top_usernames"]),
        "timeline": len(stats["timeline"]),
        "timelineAttempts": sum(p["attempts"] for p in stats["timeline"]),
    }


def agree(page, api, keys):
    return all(page[k] == api[k] for k in keys)


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guard", required=True, help="the guard's SMTP listener, HOST:PORT")
    parser.add_argument("--admin", required=True, help="the guard's admin API, HOST:PORT")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--password", required=True, help="alice's password in the lab")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--work", default=tempfile.gettempdir())
    args = parser.parse_args()
    with open(args.token_file) as f:
        token = f.read().strip()
    guard = Guard(args.guard, args.admin, token)

    # 1. The scripted attack, before the page is open.
    check("alice logs in through the guard", guard.login("127.0.0.1", "alice", args.password) == 235)
    check("the first guesser (127.0.31.1) is turned away after its guesses",
          guard.guess_until_banned("127.0.31.1", "alice") is not None)
    check("the second guesser (127.0.32.1) is turned away after its guesses",
          guard.guess_until_banned("127.0.32.1", "postmaster") is not None)
    check("admin/admin, accepted by the backend, is refused to the client",
          guard.login("127.0.33.1", "admin", "admin") == 535)
    guard.api("POST", "/api/bans", {"scope": "username", "key": "guest", "duration": "2h",
                                    "reason": "manual"})
    expected_bans = {("ip", "127.0.31.1"), ("ip", "127.0.32.1"), ("username", "guest"), ("username", "admin")}
    bans_now = {(b["scope"], b["key"]) for b in guard.api("GET", "/api/bans?limit=500")["bans"]}
    check("the API has the attack's bans", expected_bans <= bans_now, f"{sorted(bans_now)}")

    log = open(os.path.join(args.work, "chromium.log"), "wb")
    browser = Browser(os.path.join(args.work, "chromium-profile"), 1400, 1000, log)
    origin = guard.admin
    try:
        # 2. No token: the login form. A wrong token, then the right one, typed into it.
        browser.navigate(origin + "/dashboard")
        check("without a token the page asks for one",
              browser.wait('!document.getElementById("login").hidden && document.getElementById("app").hidden', 15))
        browser.type_into("#token-input", "sgt_" + "0" * 64)
        browser.click('#login-form button[type="submit"]')
        check("a wrong token is refused on the page",
              browser.wait('document.getElementById("error").textContent === "The token was refused."', 10))
        browser.evaluate('document.getElementById("token-input").value = ""')
        browser.type_into("#token-input", token)
        browser.click('#login-form button[type="submit"]')
        check("the right token opens the dashboard", browser.wait('document.body.dataset.ready === "1"', 15))
        check("the live feed connects", browser.wait('document.getElementById("conn").textContent === "live"', 10))
        check("the token is not left in the address",
              "token" not in browser.evaluate("location.href"), browser.evaluate("location.href"))

        page, api = page_state(browser), api_view(guard)
        check("the figures of the last hour and day are the API's", page["figures"] == api["figures"],
              f"page {page['figures']} api {api['figures']}")
        check("the figures count the attack (failures and refusals in the last hour)",
              int(page["figures"]["failures"][0]) >= 10 and int(page["figures"]["refused"][0]) >= 2
              and int(page["figures"]["successes"][0]) >= 1 and int(page["figures"]["alerts"][0]) >= 1,
              f"{page['figures']}")
        check("the top addresses, networks and usernames are the API's",
              agree(page, api, ["topIPs", "topPrefixes", "topUsernames"]),
              f"page {page['topIPs']} {page['topUsernames']} api {api['topIPs']} {api['topUsernames']}")
        check("the guessed usernames are among the top ones",
              {"alice", "postmaster"} <= {row[0] for row in page["topUsernames"]}, f"{page['topUsernames']}")
        check("the active bans and their count are the API's", agree(page, api, ["bans", "banCount"]),
              f"page {page['bans']} api {api['bans']}")
        check("the alerts are the API's, the weak credential one highlighted as critical",
              page["alerts"] == api["alerts"] and ["weak_credential_accepted", "alert-critical"] in page["alerts"],
              f"page {page['alerts']} api {api['alerts']}")
        check("the chart has the API's per-minute points", agree(page, api, ["timeline", "timelineAttempts"])
              and page["timeline"] == 180, f"page {page['timeline']}/{page['timelineAttempts']} api {api['timeline']}/{api['timelineAttempts']}")
        backlog = guard.api("GET", "/api/events?kind=auth,ban,unban,alert&after=0&limit=100")["events"]
        check("the live feed shows the API's events, newest first",
              page["feedIDs"] == [e["id"] for e in reversed(backlog)],
              f"page {page['feedIDs'][:5]}… api {[e['id'] for e in backlog][-5:]}")

        # 3. Live: a third guesser while the page is open.
        before = max(page["feedIDs"] or [0])
        guard.guess_until_banned("127.0.34.1", "info")
        check("the page shows the new attempts without a reload",
              browser.wait(f'[...document.querySelectorAll("#feed tbody tr[data-id]")].some((r) => Number(r.dataset.id) > {before} && r.children[2].textContent === "127.0.34.1" && r.children[1].textContent === "auth")', 10))
        check("the new ban appears in the table without a reload",
              browser.wait('!!document.querySelector(\'#bans tbody tr[data-scope="ip"][data-key="127.0.34.1"]\')', 10))
        converged = False
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and not converged:
            page, api = page_state(browser), api_view(guard)
            converged = page["figures"] == api["figures"] and agree(page, api, ["topIPs", "bans", "banCount"])
            if not converged:
                time.sleep(0.5)
        check("the figures and top lists catch up with the API by themselves", converged,
              f"page {page['figures']} api {api['figures']}")

        # 4. Lift a ban through the page.
        row = '#bans tbody tr[data-scope="ip"][data-key="127.0.31.1"]'
        check("the ban of 127.0.31.1 is turned away at connect before the lift", guard.greeting("127.0.31.1") == 554)
        check("its Lift button is visible and clicked", browser.click(row + " button.lift"))
        check("the row goes from the page", browser.wait(f'!document.querySelector({json.dumps(row)})', 10))
        remaining = {(b["scope"], b["key"]) for b in guard.api("GET", "/api/bans?limit=500")["bans"]}
        check("the API no longer has the ban; the others stay",
              ("ip", "127.0.31.1") not in remaining and ("ip", "127.0.32.1") in remaining, f"{sorted(remaining)}")
        check("the feed shows the unban",
              browser.wait('[...document.querySelectorAll("#feed tbody tr[data-id]")].some((r) => r.children[1].textContent === "unban" && r.children[2].textContent === "127.0.31.1")', 10))
        check("the lifted address is let in again", guard.greeting("127.0.31.1") == 220)
        check("the ban count follows", browser.wait(
            f'document.getElementById("ban-count").textContent === "{len(remaining)}"', 10))

        # 5. Nothing thrown, no policy violation, nothing asked of another server. The screenshot.
        browser.evaluate('document.getElementById("hours").value = "1"; document.getElementById("hours").dispatchEvent(new Event("change")); 0')
        browser.wait("state.timeline.length === 60", 10)
        time.sleep(0.3)
        browser.screenshot(args.screenshot)
        size = png_size(args.screenshot)
        check("a screenshot of the whole page is saved", size is not None and size[0] >= 1300 and size[1] >= 1000,
              f"{args.screenshot}: {size}")
        events = browser.drain()
        thrown = [e["params"]["exceptionDetails"].get("text") for e in events if e["method"] == "Runtime.exceptionThrown"]
        check("no script error on the page", not thrown, f"{thrown}")
        violations = [e["params"]["entry"]["text"] for e in events if e["method"] == "Log.entryAdded"
                      and "Content Security Policy" in e["params"]["entry"].get("text", "")]
        check("no Content-Security-Policy violation", not violations, f"{violations}")
        urls = {e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"}
        foreign = sorted(u for u in urls if not u.startswith(origin + "/"))
        check("the page asks nothing of any server but the guard", urls and not foreign, f"{foreign}")
        check("the token is in no address the page asked for", not any(token in u for u in urls))
    finally:
        browser.close()
        log.close()

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
