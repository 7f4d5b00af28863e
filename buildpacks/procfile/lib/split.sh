# shellcheck shell=bash
# Splits a Procfile command into words the way a POSIX shell would for a plain command:
# blanks separate words, single quotes keep everything, double quotes keep everything but
# `\"`, `\\`, `\$` and `` \` ``, and a backslash outside quotes keeps the next character.
#
# split_words COMMAND sets WORDS to the words and returns 0; it returns 2 and sets
# SHELL_NEEDED to the construct found when the command needs a shell (pipes, lists,
# redirections, expansions, globs, comments, variable assignments), and returns 3 with
# SPLIT_ERROR set for an unterminated quote or a trailing backslash.

# shellcheck disable=SC2034 # WORDS, SHELL_NEEDED and SPLIT_ERROR are for the caller
split_words() {
  local s="$1" word="" quote="" c next
  local -i i n=${#s} have=0
  WORDS=()
  SHELL_NEEDED=""
  SPLIT_ERROR=""
  for ((i = 0; i < n; i++)); do
    c="${s:i:1}"
    if [[ "$quote" == "'" ]]; then
      if [[ "$c" == "'" ]]; then quote=""; else word+="$c"; fi
      continue
    fi
    if [[ "$quote" == '"' ]]; then
      case "$c" in
        '"') quote="" ;;
        '$' | '`')
          SHELL_NEEDED="$c"
          return 2
          ;;
        "\\")
          next="${s:i+1:1}"
          if [[ "$next" == '"' || "$next" == "\\" || "$next" == '$' || "$next" == '`' ]]; then
            word+="$next"
            i+=1
          else
            word+="$c"
          fi
          ;;
        *) word+="$c" ;;
      esac
      continue
    fi
    case "$c" in
      ' ' | $'\t')
        if ((have)); then
          WORDS+=("$word")
          word=""
          have=0
        fi
        ;;
      "'" | '"')
        quote="$c"
        have=1
        ;;
      "\\")
        if ((i + 1 >= n)); then
          SPLIT_ERROR="trailing backslash"
          return 3
        fi
        i+=1
        word+="${s:i:1}"
        have=1
        ;;
      '|' | '&' | ';' | '<' | '>' | '(' | ')' | '$' | '`' | '*' | '?' | '[')
        SHELL_NEEDED="$c"
        return 2
        ;;
      '#' | '~')
        if ((!have)); then
          SHELL_NEEDED="$c"
          return 2
        fi
        word+="$c"
        ;;
      '=')
        # NAME=value before the program is an assignment, which only a shell performs.
        if ((${#WORDS[@]} == 0)) && [[ "$word" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] && [[ "${s:0:i}" == *"$word" ]]; then
          SHELL_NEEDED="$word="
          return 2
        fi
        word+="$c"
        have=1
        ;;
      *)
        word+="$c"
        have=1
        ;;
    esac
  done
  if [[ -n "$quote" ]]; then
    SPLIT_ERROR="unterminated $quote quote"
    return 3
  fi
  if ((have)); then
    WORDS+=("$word")
  fi
  return 0
}
