# bash completion for coalition(1).
#
# Commands and their verbs are listed here (tools/coalition.c has the
# table); options are read from the installed tool's own --help at the
# time of completion, so they never drift from what it accepts.

_coalition_verbs()
{
    case $1 in
    ticket) echo "issue verify request" ;;
    net) echo "peers" ;;
    atlas) echo "list publish retire" ;;
    almanac) echo "watch retire" ;;
    chronicle) echo "log append retire" ;;
    compute) echo "providers submit status" ;;
    confluence) echo "status retire" ;;
    group) echo "exec query status" ;;
    map) echo "put get del len list watch" ;;
    set) echo "add remove has len list watch" ;;
    vec) echo "push pop get set len list watch" ;;
    cell) echo "set get clear watch" ;;
    once) echo "set get watch" ;;
    pq) echo "push pop-min pop-max peek del len list watch" ;;
    esac
}

_coalition()
{
    local cur prev cmd verb i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="id keygen ticket net atlas almanac chronicle compute
        confluence demo group map set vec cell once pq"

    if [ "$COMP_CWORD" -eq 1 ]; then
        mapfile -t COMPREPLY < <(compgen -W "$commands --help --version" -- "$cur")
        return
    fi
    cmd=${COMP_WORDS[1]}
    verb=
    for ((i = 2; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        -*) ;;
        *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done

    # Arguments that name files.
    case $prev in
    --out | --key | --coalition | --config | --image | --file | --export)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        compopt -o filenames 2>/dev/null
        return
        ;;
    --dir)
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        compopt -o filenames 2>/dev/null
        return
        ;;
    esac

    local verbs
    verbs=$(_coalition_verbs "$cmd")
    if [ -n "$verbs" ] && [ -z "$verb" ] && [[ $cur != -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$verbs" -- "$cur")
        return
    fi
    if [[ $cur == -* ]]; then
        local opts
        opts=$("${COMP_WORDS[0]}" "$cmd" ${verb:+"$verb"} --help 2>&1 |
            grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
        mapfile -t COMPREPLY < <(compgen -W "$opts --help" -- "$cur")
        return
    fi
    case $cmd in
    id) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null ;;
    esac
}

complete -F _coalition coalition
