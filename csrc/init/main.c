/* placeholder: replaced by the real pyrunc-init */
int main(void) { return 1; }
