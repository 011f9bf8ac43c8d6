//! Reporting: reads a run's results (the [`crate::results`] contract, never the driver's
//! measurements) and renders them. [`model`] computes every figure and sentence once, as
//! one view model; [`summary`] renders it as the terminal summary and [`html`] (with
//! [`charts`]) as the self-contained page. Shared number formatting is in [`format`].

mod brief;
pub mod charts;
pub mod format;
pub mod gate;
pub mod html;
pub mod model;
mod summary;

pub use brief::{render_brief, MAX_WIDTH};
pub use html::{render as render_html, write as write_html, ReportError};
pub use summary::render_summary;
