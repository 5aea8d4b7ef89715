# %post of oidcd ($1: 1 on installation, 2 on upgrade). Never turns PAM logins on.
/sbin/ldconfig || :
if [ "$1" -eq 1 ]; then
    # nsswitch.conf: where authselect manages it, authselect would overwrite an edit, so the
    # administrator adds oidc through a custom profile (README.packaging.md); otherwise add it
    # after files here, as the Debian package does.
    if command -v authselect >/dev/null 2>&1 && authselect current >/dev/null 2>&1; then
        echo "oidcd: authselect manages /etc/nsswitch.conf: oidc goes in with the custom profile" \
            "that /usr/libexec/oidcd/oidc-authselect create makes (step 3 below)"
    else
        /usr/libexec/oidcd/oidc-nsswitch add /etc/nsswitch.conf ||
            echo "oidcd: could not edit /etc/nsswitch.conf: add oidc after files by hand" >&2
    fi
    # %systemd_post: the distribution's preset decides whether the unit is enabled.
    if [ -x /usr/bin/systemctl ]; then
        /usr/bin/systemctl --no-reload preset oidcd.service >/dev/null 2>&1 || :
    fi
    if ! errors=$(/usr/sbin/oidcd --check-config 2>&1); then
        echo "oidcd: /etc/oidcd/oidcd.toml has errors, and oidcd will not start until they are fixed:"
        printf '%s\n' "$errors" | sed 's/^/  /'
    fi
    echo "oidcd: installed. Logins are unchanged: pam_oidc is in no PAM stack."
    echo "Next steps:"
    echo "  1. Edit /etc/oidcd/oidcd.toml: uncomment [provider], set issuer and client_id;"
    echo "     then: systemctl enable --now oidcd (or systemctl restart oidcd)"
    echo "  2. Check the setup: oidcctl doctor (it must report no errors)"
    echo "  3. Add pam_oidc to the PAM stacks and oidc to nsswitch.conf through authselect:"
    echo "     /usr/libexec/oidcd/oidc-authselect create, then the authselect select it prints"
    echo "     (/usr/share/doc/oidcd/README.packaging.md, section RPM)"
fi
exit 0
