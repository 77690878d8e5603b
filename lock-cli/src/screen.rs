//! The terminal of `watch`'s live view: a full-screen page redrawn in place.
//!
//! The view takes the terminal's alternate screen (as `top` and `watch(1)` do), so the
//! operator's scrollback is left as it was and comes back when the view ends; the cursor is
//! hidden meanwhile. [`Screen`] gives the terminal back when dropped: when the command ends,
//! on Ctrl-C (the future holding it is dropped), on an error, and on a panic.

use std::io::{self, Stdout, Write};

use crossterm::{
    cursor::{Hide, MoveTo, Show},
    execute, queue,
    style::Print,
    terminal::{self, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen},
};

/// The alternate screen of the terminal on stdout, held until dropped.
#[derive(Debug)]
pub(crate) struct Screen {
    out: Stdout,
}

impl Screen {
    /// Switches stdout's terminal to its alternate screen and hides the cursor.
    pub(crate) fn enter() -> io::Result<Self> {
        let mut out = io::stdout();
        execute!(out, EnterAlternateScreen, Hide)?;
        Ok(Self { out })
    }

    /// Draws `lines` from the top left, one per row, in place of what was there: each row is
    /// overwritten, never scrolled. Lines wider than the terminal are cut, and rows beyond its
    /// height are left out, so a small terminal never scrolls the view.
    pub(crate) fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        let (width, height) = terminal::size()?;
        let mut out = self.out.lock();
        let mut drawn = 0;
        for (row, line) in (0..height).zip(lines) {
            queue!(
                out,
                MoveTo(0, row),
                Clear(ClearType::CurrentLine),
                Print(cut(line, width))
            )?;
            drawn = row + 1;
        }
        if drawn < height {
            queue!(out, MoveTo(0, drawn), Clear(ClearType::FromCursorDown))?;
        }
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Nothing better to do if the terminal is gone.
        let _ = execute!(self.out, Show, LeaveAlternateScreen);
    }
}

/// The first `width` characters of `line`.
fn cut(line: &str, width: u16) -> String {
    line.chars().take(usize::from(width)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_to_the_width() {
        assert_eq!(cut("held by orders-api", 7), "held by");
        assert_eq!(cut("free", 80), "free");
        assert_eq!(cut("clé", 2), "cl");
    }
}
