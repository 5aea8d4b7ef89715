# %postun of oidcd ($1: 0 on erase, 1 on upgrade).
/sbin/ldconfig || :
if [ "$1" -ge 1 ] && [ -x /usr/bin/systemctl ]; then
    # %systemd_postun_with_restart: the new daemon serves the old modules still loaded in
    # long-running processes (the protocol is versioned).
    /usr/bin/systemctl daemon-reload >/dev/null 2>&1 || :
    /usr/bin/systemctl try-restart oidcd.service >/dev/null 2>&1 || :
fi
if [ "$1" -eq 0 ]; then
    # The package cannot own directories (a cargo-generate-rpm limit): remove the empty ones it
    # created. The database in /var/lib/oidcd stays, as RPM packages leave state.
    for d in /etc/oidcd /usr/libexec/oidcd /usr/share/doc/oidcd/examples /usr/share/doc/oidcd \
        /usr/share/licenses/oidcd; do
        rmdir "$d" 2>/dev/null || :
    done
fi
exit 0
