# %preun of oidcd ($1: 0 on erase, 1 on upgrade). On erase, while the helper is installed:
# stop the daemon and take oidc out of nsswitch.conf (unless authselect manages the file).
if [ "$1" -eq 0 ]; then
    if [ -x /usr/bin/systemctl ]; then
        /usr/bin/systemctl --no-reload disable --now oidcd.service >/dev/null 2>&1 || :
    fi
    if command -v authselect >/dev/null 2>&1 && authselect current >/dev/null 2>&1; then
        echo "oidcd: take pam_oidc and oidc out of your authselect profile" \
            "(authselect select <previous profile>) before logging out"
    else
        /usr/libexec/oidcd/oidc-nsswitch remove /etc/nsswitch.conf || :
    fi
fi
exit 0
