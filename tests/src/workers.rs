//! Worker OS processes, for tests that contend for a lock across processes.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// How long collecting output waits for a killed worker's pipes to close (a grandchild may hold them).
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// What one worker did: its exit status and everything it printed.
#[derive(Debug, Clone)]
pub struct WorkerOutput {
    /// The exit status (a killed worker reports the signal, see `ExitStatusExt::signal`).
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
    /// Whether the kit killed the worker because [`Workers::wait_all`]'s timeout passed.
    pub timed_out: bool,
}

impl WorkerOutput {
    /// Panics unless the worker exited with success, showing its status and stderr.
    pub fn assert_success(&self) {
        assert!(
            self.status.success(),
            "worker failed: {:?}\n{}",
            self.status,
            self.stderr
        );
    }

    /// The value of the `name=value` line the worker printed.
    ///
    /// # Panics
    ///
    /// When the worker printed no such line.
    pub fn field(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no `{name}=` in worker output:\n{}", self.stdout))
    }
}

/// Configures worker processes; made by [`Workers::command`].
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use lock_tests::Workers;
///
/// let workers = Workers::command(env!("CARGO"))
///     .env("RUST_LOG", "debug")
///     .worker(["--version"])
///     .worker(["--help"])
///     .spawn();
/// for output in workers.wait_all(Duration::from_secs(10)) {
///     assert!(output.status.success(), "{}", output.stderr);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct WorkersBuilder {
    program: OsString,
    envs: Vec<(OsString, OsString)>,
    workers: Vec<Vec<OsString>>,
}

impl WorkersBuilder {
    /// Sets an environment variable for every worker (on top of the inherited environment).
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Adds one worker, run with these arguments.
    #[must_use]
    pub fn worker<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.workers
            .push(args.into_iter().map(|a| a.as_ref().to_owned()).collect());
        self
    }

    /// Spawns every worker, stdin closed, stdout and stderr captured.
    ///
    /// # Panics
    ///
    /// When a process cannot be spawned (the ones already spawned are killed).
    pub fn spawn(self) -> Workers {
        let mut workers = Workers {
            program: self.program.clone(),
            procs: Vec::new(),
        };
        for args in &self.workers {
            let mut command = Command::new(&self.program);
            command
                .args(args)
                .envs(self.envs.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = command.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot spawn worker {:?} {:?}: {e}",
                    self.program.to_string_lossy(),
                    args
                )
            });
            let stdout = Capture::start(child.stdout.take());
            let stderr = Capture::start(child.stderr.take());
            workers.procs.push(Worker {
                child,
                status: None,
                timed_out: false,
                stdout,
                stderr,
            });
        }
        workers
    }
}

/// A group of worker OS processes with captured output.
///
/// Each worker's stdout and stderr are drained by background threads, so a chatty worker never blocks
/// on a full pipe. Dropping `Workers` kills (`SIGKILL`) and reaps every worker still running, so no
/// process is left behind, even when the test panics.
pub struct Workers {
    program: OsString,
    procs: Vec<Worker>,
}

struct Worker {
    child: Child,
    status: Option<ExitStatus>,
    timed_out: bool,
    stdout: Capture,
    stderr: Capture,
}

/// A pipe drained into a shared buffer by a thread.
struct Capture {
    buffer: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    fn start(pipe: Option<impl Read + Send + 'static>) -> Capture {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let thread = pipe.map(|mut pipe| {
            let buffer = Arc::clone(&buffer);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buffer
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        Capture { buffer, thread }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }

    /// Waits (until `deadline`) for the pipe to reach end of file, then returns the text.
    fn finish(&mut self, deadline: Instant) -> String {
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        self.text()
    }
}

impl Workers {
    /// Starts configuring workers that run `program` (for example `env!("CARGO_BIN_EXE_worker")`).
    pub fn command(program: impl AsRef<OsStr>) -> WorkersBuilder {
        WorkersBuilder {
            program: program.as_ref().to_owned(),
            envs: Vec::new(),
            workers: Vec::new(),
        }
    }

    /// The number of workers.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Whether there are no workers.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// The process id of worker `i`.
    pub fn pid(&self, i: usize) -> u32 {
        self.procs[i].child.id()
    }

    /// Kills worker `i` with `SIGKILL` and reaps it (its output stays available to
    /// [`wait_all`](Self::wait_all)). Does nothing if it already exited.
    pub fn kill(&mut self, i: usize) {
        let worker = &mut self.procs[i];
        if worker.poll().is_none() {
            let _ = worker.child.kill();
            worker.status = worker.child.wait().ok();
        }
    }

    /// Stops worker `i` with `SIGSTOP` (it keeps its connections but does nothing, like a long GC pause).
    ///
    /// # Panics
    ///
    /// When the worker already exited.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, Signal::SIGSTOP);
    }

    /// Continues worker `i` with `SIGCONT` after [`pause`](Self::pause).
    ///
    /// # Panics
    ///
    /// When the worker already exited.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, Signal::SIGCONT);
    }

    fn signal(&mut self, i: usize, signal: Signal) {
        let worker = &mut self.procs[i];
        if let Some(status) = worker.poll() {
            panic!("cannot send {signal} to worker {i}: it already exited ({status})");
        }
        let pid = Pid::from_raw(i32::try_from(worker.child.id()).expect("pid fits in i32"));
        signal::kill(pid, signal)
            .unwrap_or_else(|e| panic!("cannot send {signal} to worker {i}: {e}"));
    }

    /// Whether worker `i` is still running (a paused worker is running).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.procs[i].poll().is_none()
    }

    /// What worker `i` has printed on stdout so far.
    pub fn stdout_so_far(&self, i: usize) -> String {
        self.procs[i].stdout.text()
    }

    /// Waits until worker `i`'s stdout contains `needle` (for example a "ready" or "locked" line),
    /// and returns whether it did within `timeout`. Returns `false` early if the worker exits without
    /// printing it.
    pub fn wait_for_stdout(&mut self, i: usize, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.procs[i].stdout.text().contains(needle) {
                return true;
            }
            if self.procs[i].poll().is_some() {
                // Give the pipe reader a moment to catch up with the last lines.
                let text = self.procs[i].stdout.finish(Instant::now() + PIPE_GRACE);
                return text.contains(needle);
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for every worker to exit, for at most `timeout` in total; workers still running then are
    /// killed (`SIGKILL`, `timed_out: true`). Returns the outputs in spawn order. Blocks the thread;
    /// from async code use [`wait_all_async`](Self::wait_all_async).
    pub fn wait_all(mut self, timeout: Duration) -> Vec<WorkerOutput> {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self
                .procs
                .iter_mut()
                .map(Worker::poll)
                .filter(Option::is_none)
                .count();
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        for worker in &mut self.procs {
            if worker.poll().is_none() {
                // SIGKILL also ends a paused (stopped) worker.
                let _ = worker.child.kill();
                worker.status = worker.child.wait().ok();
                worker.timed_out = true;
            }
        }
        let pipes_deadline = Instant::now() + PIPE_GRACE;
        self.procs
            .iter_mut()
            .map(|worker| WorkerOutput {
                status: worker.status.expect("every worker was reaped"),
                stdout: worker.stdout.finish(pipes_deadline),
                stderr: worker.stderr.finish(pipes_deadline),
                timed_out: worker.timed_out,
            })
            .collect()
    }

    /// [`wait_all`](Self::wait_all) on a blocking thread, for async tests.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub async fn wait_all_async(self, timeout: Duration) -> Vec<WorkerOutput> {
        tokio::task::spawn_blocking(move || self.wait_all(timeout))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

impl Worker {
    /// The exit status if the process has exited (reaping it), else `None`.
    fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.child.try_wait() {
                Ok(status) => self.status = status,
                Err(_) => {
                    let _ = self.child.kill();
                    self.status = self.child.wait().ok();
                }
            }
        }
        self.status
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.procs {
            if worker.poll().is_none() {
                let _ = worker.child.kill();
                worker.status = worker.child.wait().ok();
            }
        }
    }
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pids: Vec<u32> = self.procs.iter().map(|w| w.child.id()).collect();
        f.debug_struct("Workers")
            .field("program", &self.program)
            .field("pids", &pids)
            .finish()
    }
}

/// Spawns one worker running `program` per entry of `args_per_worker`; shorthand for
/// [`Workers::command`] with one [`worker`](WorkersBuilder::worker) per entry.
///
/// # Panics
///
/// When a process cannot be spawned.
pub fn spawn_workers<S: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    args_per_worker: Vec<Vec<S>>,
) -> Workers {
    args_per_worker
        .into_iter()
        .fold(Workers::command(program), |builder, args| {
            builder.worker(args)
        })
        .spawn()
}
