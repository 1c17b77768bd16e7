/* An integrator's first program: compile the ethereum.superchain coalition
 * in and print the fingerprint to compare with what its operator
 * published. Built and run by the tests (tests/integration). */
#include <stdio.h>

#include "coalition/identity.h"
#include "superchain.h"

int main(void)
{
    char err[CO_ERRMSG_SIZE], hex[MK_ID_HEX_LEN + 1];
    mk_id id, atlas;

    if (co_coalition_validate(&ETH_SUPERCHAIN, err) < 0 ||
        co_coalition_id(&ETH_SUPERCHAIN, &id, err) < 0) {
        fprintf(stderr, "superchain: %s\n", err);
        return 1;
    }
    printf("coalition_id %s\n", mk_id_hex(&id, hex));
    if (co_module_root(&ETH_SUPERCHAIN, CO_MODULE_ATLAS, &atlas, err) == 0)
        printf("atlas        %s\n", mk_id_hex(&atlas, hex));
    if (!co_coalition_almanac(&ETH_SUPERCHAIN))
        printf("almanac      not shipped\n");
    return 0;
}
