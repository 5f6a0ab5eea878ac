# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# meshctl.bash - bash completion for meshctl (installed by `make install`
# into share/bash-completion/completions/meshctl).
#
# Commands, subcommands and flags are read from meshctl's own --help at
# each level ("Commands:" and "Options:" sections), so they never drift
# from the program. Where a service (VIP:PORT/PROTO) is expected, the
# services of the running meshd are offered: the SERVICE column of
# `meshctl service list`, asked on the socket -s/--socket or
# $SLUICE_SOCKET name, with a short timeout; nothing when meshd is down.

# _meshctl_section HELP TITLE: the first word of each entry of a section.
_meshctl_section() {
	awk -v t="$2:" '$0 == t { p = 1; next } p && /^$/ { exit }
		p && /^  [^ ]/ { print $1 }' <<<"$1"
}

# _meshctl_flags HELP: every long and short flag of the "Options:" section.
_meshctl_flags() {
	awk '/^Options:$/ { p = 1; next } p && /^$/ { exit }
		p && /^  -/ { for (i = 1; i <= NF; i++) if ($i ~ /^-/) { sub(/,$/, "", $i); print $i } }' <<<"$1"
}

_meshctl_services() {
	local sock=("$@")
	"${COMP_WORDS[0]}" "${sock[@]}" --timeout 1000 service list 2>/dev/null |
		awk 'NR > 1 && $1 ~ /\/(tcp|udp)$/ { print $1 }'
}

_meshctl() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local -a path=() sock=()
	local i w help cmds nargs=0

	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-s | --socket) sock=(-s "${COMP_WORDS[i + 1]}") && ((i++)) ;;
		--socket=*) sock=("$w") ;;
		-o | --output | --timeout) ((i++)) ;;
		-*) ;;
		*)
			if [ ${#path[@]} -lt 2 ] && [ "$nargs" -eq 0 ] &&
				_meshctl_section "$("${COMP_WORDS[0]}" "${path[@]}" --help 2>/dev/null)" \
					Commands | grep -qx -- "$w"; then
				path+=("$w")
			else
				nargs=$((nargs + 1))
			fi
			;;
		esac
	done
	case $prev in
	-o | --output)
		mapfile -t COMPREPLY < <(compgen -W "table json" -- "$cur")
		return
		;;
	-s | --socket | -f | --file)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	esac
	help=$("${COMP_WORDS[0]}" "${path[@]}" --help 2>/dev/null)
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$({ _meshctl_flags "$help"; _meshctl_flags \
			"$("${COMP_WORDS[0]}" --help 2>/dev/null)"; } | sort -u)" -- "$cur")
		return
	fi
	cmds=$(_meshctl_section "$help" Commands)
	if [ -n "$cmds" ] && [ "$nargs" -eq 0 ]; then
		mapfile -t COMPREPLY < <(compgen -W "$cmds" -- "$cur")
		return
	fi
	# The first argument of a command whose grammar starts with SVC.
	if [ "$nargs" -eq 0 ] && grep -q "^Usage: [^ ]* ${path[*]} \[\?SVC" <<<"$help"; then
		[ -z "${sock[*]}" ] && [ -n "${SLUICE_SOCKET:-}" ] && sock=(-s "$SLUICE_SOCKET")
		mapfile -t COMPREPLY < <(compgen -W "$(_meshctl_services "${sock[@]}")" -- "$cur")
	fi
}
complete -F _meshctl meshctl
