//! Placeholder: in-image tests.
