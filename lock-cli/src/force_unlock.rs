//! `force-unlock`: delete a lock whoever holds it, once someone has confirmed it.
//!
//! Deleting a lock under a holder that is still working lets two owners work at once, so the
//! command asks first: with `--yes` it does not ask; at a terminal it shows who holds the lock
//! and asks `[y/N]`; anywhere else (a script, a pipe, a cron job) it refuses at once. It never
//! waits for input that nobody will type, and it never takes a piped `y` for a person's answer.
//!
//! It deletes the lock (reentrant or fair) of the name only. When that is not held, it says
//! which other primitives of the name exist (a read-write lock, a semaphore, a latch), so that
//! "nothing to do" is not read as "nothing is held".
//!
//! With `--owner ID` it asks nothing and deletes one hold: that of the owner id (or semaphore
//! permit id) the operator copied from `inspect`, in whichever of the lock, the read-write lock
//! and the semaphore it holds, and only if it still holds it. The deletion names the owner, so a
//! hold anyone else took, even after the look, is never deleted: safe from a script.

use std::{
    io::{self, BufRead, IsTerminal, Write},
    process::ExitCode,
};

use lock_runtime::{Lock, LockClient, LockError, PrimitiveKind};

use crate::{FAILED, Failure, USAGE, args::Global, connect, render, snapshot::Snapshot};

/// What the operator said to deleting the lock.
enum Answer {
    /// Delete it if the holder shown, this owner id, still holds it.
    Yes(String),
    /// Leave it as it is.
    No,
    /// Nothing to ask: the lock is free.
    Free,
}

/// Runs `force-unlock NAME [--yes]`; `yes` skips the question.
pub(crate) async fn force_unlock(
    global: &Global,
    name: &str,
    yes: bool,
) -> Result<ExitCode, Failure> {
    if !yes && !io::stdin().is_terminal() {
        eprintln!("{}", refusal(name));
        return Ok(ExitCode::from(USAGE));
    }
    let client = connect(global).await?;
    let lock = client.lock(name);
    let was_held = if yes {
        lock.force_unlock().await?
    } else {
        match confirm(&lock).await? {
            Answer::Yes(owner) => {
                if !lock.force_unlock_held_by(&owner).await? {
                    return moved(&client, global, &lock).await;
                }
                true
            }
            Answer::Free => false,
            Answer::No => {
                eprintln!("lock-cli: not confirmed: lock `{name}` left as it was");
                return Ok(ExitCode::from(FAILED));
            }
        }
    };
    let others = if was_held {
        Vec::new()
    } else {
        others(&client, name).await?
    };
    report(global, name, was_held, &others);
    Ok(ExitCode::SUCCESS)
}

/// Runs `force-unlock NAME --owner ID`: deletes the hold of `owner` under `name`, wherever it
/// holds, if it still holds it; asks nothing (the id is the operator's decision, and only that
/// owner's hold can be deleted). Fails when someone else holds the name and `owner` nothing.
pub(crate) async fn held_by(global: &Global, name: &str, owner: &str) -> Result<ExitCode, Failure> {
    let client = connect(global).await?;
    // Each deletion names the owner, so trying the kinds in turn deletes its hold wherever it
    // is, and nothing else; `info()` would list only the first holders of a busy semaphore.
    for hold in [Hold::Lock, Hold::ReadWrite, Hold::Permit] {
        match hold.delete(&client, name, owner).await {
            Ok(true) => {
                report_deleted(global, name, owner, hold.kind());
                return Ok(ExitCode::SUCCESS);
            }
            // Not held there; or not an owner id (a permit id), or that kind's key is
            // another program's: look in the next kind.
            Ok(false) => {}
            Err(err) if err.is_invalid_argument() || matches!(err, LockError::WrongType { .. }) => {
            }
            Err(err) => return Err(err.into()),
        }
    }
    let holders = Snapshot::look(&client, name).await?.holder_names();
    if holders.is_empty() {
        if global.json {
            println!(
                "{}",
                serde_json::json!({ "name": name, "was_held": false, "owner": owner, "others": [] })
            );
        } else {
            println!(
                "`{owner}` holds nothing of `{name}`, and nothing of it is held: nothing to do"
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "lock-cli: `{owner}` holds nothing of `{name}`, nothing deleted; held now by: {}\n\
         See the holders' owner ids and permit ids with `lock-cli inspect {name}`.",
        holders.join(", ")
    );
    Ok(ExitCode::from(FAILED))
}

/// Where an owner id holds something under a name.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// The lock (reentrant or fair).
    Lock,
    /// The read-write lock: its writer or a reader.
    ReadWrite,
    /// The semaphore: a permit id.
    Permit,
}

impl Hold {
    /// The kind of primitive it is in.
    fn kind(self) -> PrimitiveKind {
        match self {
            Self::Lock => PrimitiveKind::Lock,
            Self::ReadWrite => PrimitiveKind::ReadWriteLock,
            Self::Permit => PrimitiveKind::Semaphore,
        }
    }

    /// Deletes `owner`'s hold here, in the primitive named `name`, if it still holds it;
    /// whether it did.
    async fn delete(self, client: &LockClient, name: &str, owner: &str) -> Result<bool, LockError> {
        match self {
            Self::Lock => client.lock(name).force_unlock_held_by(owner).await,
            Self::ReadWrite => {
                client
                    .read_write_lock(name)
                    .force_unlock_held_by(owner)
                    .await
            }
            Self::Permit => client.semaphore(name).release_by_id(owner).await,
        }
    }
}

/// Says which hold `--owner` deleted, in text or JSON.
fn report_deleted(global: &Global, name: &str, owner: &str, kind: PrimitiveKind) {
    if global.json {
        println!(
            "{}",
            serde_json::json!({
                "name": name,
                "was_held": true,
                "kind": render::kind_key(kind),
                "owner": owner,
                "others": [],
            })
        );
    } else {
        println!(
            "{} `{name}`: the hold of `{owner}` deleted (any waiters were woken to take it)",
            kind.as_str()
        );
    }
}

/// Says what became of a lock whose confirmed holder no longer held it when the deletion ran:
/// freed meanwhile (nothing to do), or taken by a holder the operator did not decide on.
async fn moved(client: &LockClient, global: &Global, lock: &Lock) -> Result<ExitCode, Failure> {
    let name = lock.name();
    let now = lock.info().await?;
    if now.holder().is_none() {
        report(global, name, false, &others(client, name).await?);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "lock-cli: lock `{name}` changed hands while you answered, nothing deleted; it is now: \
         {}\nRun again to decide on its new holder.",
        render::line(&now)
    );
    Ok(ExitCode::from(FAILED))
}

/// The kinds other than the lock that exist under `name`.
async fn others(client: &LockClient, name: &str) -> Result<Vec<PrimitiveKind>, Failure> {
    let snapshot = Snapshot::look(client, name).await?;
    Ok(snapshot
        .kinds()
        .into_iter()
        .filter(|&kind| kind != PrimitiveKind::Lock)
        .collect())
}

/// Why `force-unlock` without `--yes` does nothing when there is no terminal to ask at.
fn refusal(name: &str) -> String {
    format!(
        "lock-cli: refusing to force-unlock `{name}` without --yes: standard input is not a \
         terminal, so there is no one to ask.\n\
         Force-unlocking deletes the lock whoever holds it. Its holder is not told until its \
         next renewal\n(watchdog mode) or the end of its lease, and may go on working as if it \
         held the lock, beside\nthe next owner. See who holds it with `lock-cli inspect \
         {name}`; run again with --yes to delete it, or with --owner and its owner id to delete\n\
         that holder's hold only."
    )
}

/// Shows who holds the lock and asks whether to delete it. A "yes" stands only for the holder
/// that was shown: the deletion names its owner id.
async fn confirm(lock: &Lock) -> Result<Answer, Failure> {
    let shown = lock.info().await?;
    let Some(holder) = shown.holder() else {
        return Ok(Answer::Free);
    };
    let question = format!(
        "{}\nForce-unlocking deletes the lock whoever holds it; its holder is not told until its \
         next renewal or the end of its lease,\nand may go on working beside the next owner.\n\
         Force-unlock `{}`? [y/N] ",
        render::lock_details(&shown),
        shown.name()
    );
    if !is_yes(&ask(question).await?) {
        return Ok(Answer::No);
    }
    Ok(Answer::Yes(holder.owner().to_owned()))
}

/// Prints `question` on stderr and reads one line of stdin ("" at its end), off the runtime's
/// thread so the client's connections keep being served while the operator thinks.
async fn ask(question: String) -> io::Result<String> {
    tokio::task::spawn_blocking(move || {
        let mut stderr = io::stderr().lock();
        stderr.write_all(question.as_bytes())?;
        stderr.flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        Ok(answer)
    })
    .await
    .map_err(io::Error::other)?
}

/// Whether an answer to a `[y/N]` question is yes: `y` or `yes`, in any case. Anything else,
/// an empty line and the end of input included, is no.
fn is_yes(answer: &str) -> bool {
    let answer = answer.trim();
    answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
}

/// Says what was done, in text or JSON; `others` are the other kinds of primitive that exist
/// under the name, which `force-unlock` leaves alone.
fn report(global: &Global, name: &str, was_held: bool, others: &[PrimitiveKind]) {
    if global.json {
        let others: Vec<_> = others.iter().map(|&kind| render::kind_key(kind)).collect();
        println!(
            "{}",
            serde_json::json!({ "name": name, "was_held": was_held, "others": others })
        );
    } else if was_held {
        println!("lock `{name}` was held: deleted (any waiters were woken to take it)");
    } else if others.is_empty() {
        println!("lock `{name}` was not held: nothing to do");
    } else {
        let others: Vec<_> = others.iter().map(|kind| kind.as_str()).collect();
        println!(
            "lock `{name}` was not held: nothing to do; a {} of that name exists, which \
             force-unlock leaves alone unless given a holder's --owner id (see `lock-cli \
             inspect {name}`)",
            others.join(" and a ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_and_yes_confirm() {
        for yes in ["y\n", "Y\n", "yes\n", " YES \r\n", "y"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n\n", "no\n", "yep\n", "y y\n", "ye\n"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }
}
