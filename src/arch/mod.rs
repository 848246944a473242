//! Placeholder: POWER8 (ppc64) architecture support.
