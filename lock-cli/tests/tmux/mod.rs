//! `lock-cli` at a real terminal: a detached tmux session of a fixed size runs it, the test
//! reads the screen (`capture-pane`) and types (`send-keys`).
//!
//! Each [`Terminal`] has its own tmux server (its own socket, no user configuration), so tests
//! run in parallel and never touch the tmux sessions of the person running them; dropping it
//! kills that server and the program in it and removes the socket (tmux leaves it behind), also
//! when the test panics. A missing tmux fails the
//! test with a message saying how to install it: these tests never skip.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use lock_tests::unique_name;

/// How long a screen may take to show what a test waits for.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the screen is read while waiting.
const POLL: Duration = Duration::from_millis(50);
/// The shell that runs the program, then prints its exit status (see [`Terminal::start`]).
const REPORT_EXIT: &str = r#"trap : INT; "$0" "$@"; echo "[exit status $?]""#;

/// A program running at a tmux terminal of its own.
#[derive(Debug)]
pub(crate) struct Terminal {
    /// The tmux server's socket, in the temporary directory.
    socket: PathBuf,
}

impl Terminal {
    /// Runs `program` with `args` at a `width` x `height` terminal.
    ///
    /// A shell runs it and prints its exit status when it ends, for
    /// [`await_exit`](Self::await_exit): tmux's own `pane_dead_status` is not always set (tmux
    /// 3.3a now and then misses the end of a pane's process). The shell traps SIGINT, so Ctrl-C
    /// reaches the program (which starts with SIGINT's default action: a trap is reset at
    /// `exec`) while the shell lives on to print the status.
    pub(crate) fn start(
        width: u16,
        height: u16,
        program: &Path,
        args: &[impl AsRef<OsStr>],
    ) -> Terminal {
        let terminal = Terminal {
            socket: std::env::temp_dir().join(unique_name("lock-cli-tmux")),
        };
        let mut command = terminal.tmux();
        command
            .args(["new-session", "-d", "-s", "test", "-x"])
            .arg(width.to_string())
            .arg("-y")
            .arg(height.to_string())
            .args(["--", "sh", "-c", REPORT_EXIT])
            .arg(program)
            .args(args)
            .args([";", "set-option", "-t", "test", "remain-on-exit", "on"]);
        run(&mut command);
        terminal
    }

    /// The screen as it shows now, one line per row (trailing blanks trimmed by tmux).
    pub(crate) fn screen(&self) -> String {
        self.capture(&[])
    }

    /// Reads the screen until `shows` accepts it, and returns it.
    ///
    /// # Panics
    ///
    /// If it does not within 10 seconds, showing the last screen and naming `what`.
    pub(crate) async fn await_screen(&self, what: &str, shows: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if shows(&screen) {
                return screen;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the screen did not show {what} within {SCREEN_TIMEOUT:?}:\n{screen}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `keys`, as tmux names them (`y`, `Enter`, `C-c`).
    pub(crate) fn send_keys(&self, keys: &[&str]) {
        run(self.tmux().args(["send-keys", "-t", "test"]).args(keys));
    }

    /// Whether the terminal shows its alternate screen (a full-screen program's) now.
    pub(crate) fn alternate_screen(&self) -> bool {
        let output =
            run(self
                .tmux()
                .args(["display-message", "-p", "-t", "test", "#{alternate_on}"]));
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }

    /// Waits for the program to end, and returns its exit status (128 + N if killed by signal
    /// N).
    ///
    /// # Panics
    ///
    /// If it does not end within 10 seconds.
    pub(crate) async fn await_exit(&self) -> i32 {
        let deadline = tokio::time::Instant::now() + SCREEN_TIMEOUT;
        loop {
            // tmux's note that the pane is dead may scroll the status off the screen's top.
            let seen = self.capture(&["-S", "-"]);
            if let Some(status) = exit_status(&seen) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the program did not end within {SCREEN_TIMEOUT:?}:\n{seen}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The pane's text; `range` as `capture-pane` takes it (none: the screen only).
    fn capture(&self, range: &[&str]) -> String {
        let output = run(self
            .tmux()
            .args(["capture-pane", "-p", "-t", "test"])
            .args(range));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `tmux` on this terminal's own server, without the user's configuration.
    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .env_remove("TMUX");
        command
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // The server or its socket may be gone already; nothing to clean then.
        let _ = self.tmux().arg("kill-server").output();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The exit status that [`REPORT_EXIT`] printed in `text`, if it did.
fn exit_status(text: &str) -> Option<i32> {
    text.lines().find_map(|line| {
        line.strip_prefix("[exit status ")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
}

/// Runs a tmux command to its end.
///
/// # Panics
///
/// When tmux is missing (saying how to install it) or the command fails.
fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|err| {
        panic!(
            "cannot run tmux ({err}): the terminal tests of lock-cli drive lock-cli at a tmux \
             terminal.\nInstall tmux: `sudo apt-get install tmux` (Debian/Ubuntu), \
             `brew install tmux` (macOS)."
        )
    });
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
