fn main() {
    // glibc dlopens libnss_oidc.so.2 by that exact name; lintian wants the SONAME to match.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_oidc.so.2");
}
