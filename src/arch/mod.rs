//! Architecture support. tcefw runs only on POWER8 (ppc64le, hypervisor mode, MMU off).

pub mod ppc64;
