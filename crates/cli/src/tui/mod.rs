//! The live view: a full-screen picture of the run on stderr while it
//! goes (ratatui over crossterm), drawn from the seconds the workers
//! publish as they close ([`urk_engine::Live::with_seconds`]): nothing on
//! the hot path. `q` or Ctrl-C stops the run as Ctrl-C always has; the
//! report is printed after the screen is left. The terminal is restored
//! however the view ends: normally, on an error, or on a panic.

mod model;
mod view;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use urk_engine::Live;

pub use model::Facts;

/// The screen is taken: what `restore` gives back, once.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// How often the view is redrawn (and keys are looked at).
const FRAME: Duration = Duration::from_millis(250);
/// Runs shorter than this keep the one-line progress: a screen that
/// flashes for a second helps nobody.
pub const MIN_RUN: Duration = Duration::from_secs(3);

/// Whether the live view should be used: stderr is a terminal, and
/// neither `--no-tui` nor `-q` said otherwise.
pub fn wanted(quiet: bool, no_tui: bool, run: Duration) -> bool {
    !quiet && !no_tui && run >= MIN_RUN && std::io::stderr().is_terminal()
}

pub struct LiveView {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveView {
    /// Takes over the terminal (stderr) and draws until [`LiveView::finish`];
    /// `q` or Ctrl-C sets `stop`.
    pub fn start(
        live: Arc<Live>,
        facts: Facts,
        stop: &'static AtomicBool,
        tap: Option<crate::metrics::Tap>,
    ) -> LiveView {
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        install_panic_restore();
        let thread = std::thread::spawn(move || {
            if let Err(e) = draw_until(&live, facts, stop, &finished, tap.as_ref()) {
                restore();
                eprintln!("urk: the live view failed ({e}); the run goes on");
            }
        });
        LiveView {
            done,
            thread: Some(thread),
        }
    }

    /// Leaves the screen, so that the report prints on the terminal as it
    /// always has.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        restore();
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        restore();
    }
}

fn draw_until(
    live: &Live,
    facts: Facts,
    stop: &AtomicBool,
    done: &AtomicBool,
    tap: Option<&crate::metrics::Tap>,
) -> std::io::Result<()> {
    ACTIVE.store(true, Ordering::SeqCst);
    terminal::enable_raw_mode()?;
    execute!(
        std::io::stderr(),
        terminal::EnterAlternateScreen,
        cursor::Hide
    )?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stderr()))?;
    let mut model = model::Model::new(facts, Instant::now());
    while !done.load(Ordering::Relaxed) {
        let seconds = live.take_seconds();
        if let Some(tap) = tap {
            tap(&seconds);
        }
        model.take(seconds, live.totals());
        model.search = live.search();
        term.draw(|f| view::draw(f, &model, Instant::now()))?;
        // Keys, until the next frame is due.
        let until = Instant::now() + FRAME;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if done.load(Ordering::Relaxed) || !event::poll(left)? {
                break;
            }
            match event::read()? {
                Event::Key(k) if k.kind == KeyEventKind::Press => {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if k.code == KeyCode::Char('q') || ctrl_c {
                        stop.store(true, Ordering::SeqCst);
                        model.stopping = true;
                    }
                }
                // A resize is drawn at once, at the new size.
                Event::Resize(..) => break,
                _ => {}
            }
        }
    }
    Ok(())
}

/// Gives the terminal back: main screen, cursor, cooked mode. Safe to
/// call more than once, and from a panic.
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stderr(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

/// A panic anywhere leaves the screen first, so that its message is read
/// on a working terminal.
fn install_panic_restore() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
