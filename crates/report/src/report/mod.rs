//! Reporting: renders a run's analysis ([`crate::analysis`], read from the
//! [`crate::results`] contract, never the driver's measurements). [`model`] puts every
//! figure in words once, as one view model; `summary` and `brief` lay it out in the
//! terminal and [`html`] (with [`charts`], which draw from the analysis) as the
//! self-contained page; [`gate`] checks `--fail-if` on the analysis. Shared number
//! formatting is in [`format`].

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
