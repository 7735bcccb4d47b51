; dirty.asm: the lab's memory-dirtying guest, a 64 KiB image booted with QEMU `-bios`.
;
; Assemble: nasm -f bin -o dirty.bin dirty.asm  (src/lab/guest/build.ts does it and caches it)
;
; Inputs, written into guest RAM before the CPU starts, so no rebuild is needed:
;   -device loader,addr=0x500,data=N,data-len=4   N = MiB dirtied for ever
;   -device loader,addr=0x504,data=F,data-len=4   F = MiB filled once
;
; Memory layout (the two ranges are disjoint):
;   [1 MiB, 1 MiB + F)              filled once: a non-zero dword in every 4 KiB page
;   [1 MiB + F, 1 MiB + F + N)      a dword written into every 4 KiB page, pass after pass
; The VM needs at least 1 + F + N MiB of RAM.
;
; What a migration moves (zero pages cost almost nothing): every touched page once, F + N MiB,
; plus the dirty range once more per later round. Hybrid (one pre-copy pass, then post-copy)
; and a pre-copy that converges in its second round both move F + 2N MiB, the study's
; "allocated + dirtied"; pure post-copy moves F + N.
;
; Progress lines on the isa-debugcon port 0x402: "protected", "filled", then "dirtying" after
; the first complete pass over the dirty range (never when N = 0: the CPU halts instead).
; Nothing else is ever written there.
;
; Boot: the reset vector jumps to a stub that copies the payload from the ROM's low alias
; (F000:0000) to 0x7C00 and enters protected mode from RAM; under KVM the switch made
; straight from the ROM can hang (lab-notes.md).

PAYLOAD_BASE    equ 0x7C00
PARAM_DIRTY_MIB equ 0x500
PARAM_FILL_MIB  equ 0x504
FILL_BASE       equ 0x100000
DEBUGCON_PORT   equ 0x402
FILL_PATTERN    equ 0xA5A5A5A5
PAGE_SIZE       equ 4096
CODE_SEL        equ 0x08
DATA_SEL        equ 0x10

; ---------------------------------------------------------------------------------------
; Payload: image offset 0, runs at PAYLOAD_BASE once copied.
section payload start=0 vstart=PAYLOAD_BASE

bits 16
payload_start:
real_entry:
    lgdt [gdt_descriptor]
    mov eax, cr0
    or eax, 1                       ; protection enable
    mov cr0, eax
    jmp CODE_SEL:protected_entry

bits 32
protected_entry:
    mov ax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, PAYLOAD_BASE
    mov esi, msg_protected
    call print

    mov edi, FILL_BASE
    mov ecx, [PARAM_FILL_MIB]
    shl ecx, 8                      ; MiB -> pages
    mov eax, FILL_PATTERN
    call touch_pages
    mov esi, msg_filled
    call print

    mov ebx, edi                    ; the dirty range starts where the fill ended
    mov edx, [PARAM_DIRTY_MIB]
    shl edx, 8                      ; MiB -> pages
    test edx, edx
    jz halt_forever
    xor eax, eax                    ; pass number, also the value written
dirty_pass:
    inc eax
    mov edi, ebx
    mov ecx, edx
    call touch_pages
    cmp eax, 1
    jne dirty_pass
    mov esi, msg_dirtying
    call print
    jmp dirty_pass

halt_forever:
    hlt
    jmp halt_forever

; Writes eax into the first dword of ecx pages from edi; returns edi past the last page.
; One dword makes a page non-zero, so migration sends it whole. Filling 64 MiB byte by byte
; (rep stosd) took 6.6 s under the KVM of the lab machines (kvm_pvm); this takes about 0.15 s.
touch_pages:
    test ecx, ecx
    jz .done
.page:
    mov [edi], eax
    add edi, PAGE_SIZE
    dec ecx
    jnz .page
.done:
    ret

; esi = NUL-terminated string, written to the debug console.
print:
    pushad
    mov dx, DEBUGCON_PORT
.next:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .next
.done:
    popad
    ret

msg_protected: db "protected", 10, 0
msg_filled:    db "filled", 10, 0
msg_dirtying:  db "dirtying", 10, 0

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF           ; code: base 0, limit 4 GiB, 32-bit, execute/read
    dq 0x00CF92000000FFFF           ; data: base 0, limit 4 GiB, read/write
gdt_end:
gdt_descriptor:
    dw gdt_end - gdt - 1
    dd gdt
payload_end:

; ---------------------------------------------------------------------------------------
; ROM tail: the stub and the reset vector, run in place (CS base 0xFFFF0000 after reset).
section rom start=0xFF00 vstart=0xFF00

bits 16
copy_stub:
    cli
    cld
    in al, 0x92                     ; fast A20 on (KVM ignores A20; TCG honours it)
    or al, 2
    and al, 0xFE
    out 0x92, al
    xor ax, ax
    mov es, ax
    mov ss, ax
    mov sp, PAYLOAD_BASE
    mov ax, 0xF000                  ; low alias of the image's last 64 KiB
    mov ds, ax
    xor si, si
    mov di, PAYLOAD_BASE
    mov cx, payload_end - payload_start
    rep movsb
    xor ax, ax
    mov ds, ax
    jmp 0x0000:real_entry

    times 0xF0 - ($ - $$) db 0
reset_vector:                       ; image offset 0xFFF0, physical 0xFFFFFFF0
    jmp copy_stub
    times 0x100 - ($ - $$) db 0
